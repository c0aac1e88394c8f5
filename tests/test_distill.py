"""Knowledge distillation from a teacher netlist (config block ``distill``), on the bundled digits."""

import numpy as np
import pytest
import torch

from logicforge.errors import LogicforgeError
from logicforge.netlist import format as nf
from logicforge.netlist import reference
from logicforge.train import config
from logicforge.train import data as datasets
from logicforge.train import distill
from logicforge.train.trainer import Trainer, train

SMALL = {"widths": [240, 120], "group_size": 6, "epochs": 6, "batch_size": 64, "lr": 0.05, "tau": 2.0,
         "mode": "softmax", "init": "gaussian", "encoding": {"thresholds": 3}, "backend": "torch"}


@pytest.fixture(scope="module")
def teacher_dir(make_cfg, tmp_path_factory):
    d = tmp_path_factory.mktemp("teacher") / "run"
    train(make_cfg(SMALL), d, progress=False)
    return d


def shifted(net: nf.Netlist) -> nf.Netlist:
    """The same network with its class groups rotated: group k now counts for class (k + 1) % K, so
    the shifted teacher answers (its own class + 1) % K."""
    last = net.layers[-1]
    k, g = net.classes, net.group_size
    perm = np.roll(np.arange(k * g).reshape(k, g), 1, axis=0).ravel()
    layers = net.layers[:-1] + [nf.Layer(last.op[perm], last.a[perm], last.b[perm])]
    return nf.Netlist(net.features, net.feature_width, net.thresholds, layers, net.class_names, net.group_size,
                      net.tau).validate()


def test_teacher_logits_are_the_reference_popcounts_over_tau_in_any_chunking(teacher_dir):
    net = nf.load(teacher_dir / "netlist.json")
    x = datasets.load_dataset("digits").x_train[:300]
    scores, _ = reference.evaluate(net, x)
    whole = distill.teacher_logits(net, x)
    assert whole.dtype == torch.float32 and whole.shape == (300, 10)
    assert np.allclose(whole.numpy(), scores / net.tau)
    assert torch.equal(distill.teacher_logits(net, x, chunk=7), whole)
    assert float(whole.std()) > 0  # a trained teacher does not answer the same for every sample


def test_loss_weights_label_and_soft_target_terms():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g)
    y = torch.tensor([0, 1, 2, 3, 0])
    ce = torch.nn.functional.cross_entropy(s, y, reduction="sum")
    assert torch.equal(distill.loss(s, y, t, 0.0, 2.0), ce)
    soft = -(torch.softmax(t / 3.0, 1) * torch.log_softmax(s / 3.0, 1)).sum() * 9.0
    assert torch.allclose(distill.loss(s, y, t, 0.25, 3.0), 0.75 * ce + 0.25 * soft)
    # weight 1: the labels do not matter, and the student's optimum is the teacher's logits (up to a shift)
    s2 = (t + 1.5).requires_grad_()
    distill.loss(s2, y, t, 1.0, 3.0).backward()
    assert torch.allclose(s2.grad, torch.zeros_like(s2.grad), atol=1e-6)
    assert torch.equal(distill.loss(s, y, t, 1.0, 3.0), distill.loss(s, (y + 1) % 4, t, 1.0, 3.0))


def test_trainer_aligns_teacher_targets_with_the_training_samples_left_after_the_hold_out(make_cfg, teacher_dir):
    cfg = make_cfg(SMALL, val_fraction=0.2, distill={"teacher": str(teacher_dir)})
    tr = Trainer(cfg, teacher_dir.parent / "aligned", progress=False)
    net = nf.load(teacher_dir / "netlist.json")
    scores, _ = reference.evaluate(net, tr.dataset.x_train)
    assert tr.teacher.shape == (len(tr.y_train), 10)
    assert np.allclose(tr.teacher.numpy(), scores / net.tau)
    assert Trainer(make_cfg(SMALL), teacher_dir.parent / "plain", progress=False).teacher is None


def test_student_follows_the_teacher_not_the_labels_at_weight_one(make_cfg, teacher_dir):
    """A teacher that answers (true class + 1) mostly: a student distilled with weight 1 learns that
    mapping; with weight 0 it learns the labels."""
    net = nf.load(teacher_dir / "netlist.json")
    bad = shifted(net)
    bad.save(teacher_dir.parent / "shifted.json")
    ds = datasets.load_dataset("digits")
    _, teacher_cls = reference.evaluate(bad, ds.x_test)
    assert np.mean(teacher_cls == (ds.y_test + 1) % 10) > 0.6
    runs = {}
    for w in (0.0, 1.0):
        d = teacher_dir.parent / f"w{w}"
        train(make_cfg(SMALL, distill={"teacher": str(teacher_dir.parent / "shifted.json"), "weight": w,
                                 "temperature": 1.0}), d, progress=False)
        _, runs[w] = reference.evaluate(nf.load(d / "netlist.json"), ds.x_test)
    agree = {w: float(np.mean(c == teacher_cls)) for w, c in runs.items()}
    acc = {w: float(np.mean(c == ds.y_test)) for w, c in runs.items()}
    assert agree[1.0] > 0.6 and acc[1.0] < 0.3
    assert acc[0.0] > 0.6 and agree[0.0] < 0.3


def test_bad_teacher_is_a_one_line_error(make_cfg, tmp_path, teacher_dir):
    with pytest.raises(LogicforgeError, match="distill.teacher: .*no such run directory or netlist file"):
        Trainer(make_cfg(SMALL, distill={"teacher": str(tmp_path / "nowhere")}), tmp_path / "a", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(LogicforgeError, match="distill.teacher: .*holds no netlist.json"):
        Trainer(make_cfg(SMALL, distill={"teacher": str(tmp_path / "empty")}), tmp_path / "b", progress=False)
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(nf.NetlistError, match="junk.json: not valid JSON"):
        Trainer(make_cfg(SMALL, distill={"teacher": str(tmp_path / "junk.json")}), tmp_path / "c", progress=False)
    with pytest.raises(LogicforgeError, match="distill.teacher: .*reads 64 features .*the dataset has 30 of .* 2 classes"):
        Trainer(make_cfg(SMALL, dataset="breast_cancer", distill={"teacher": str(teacher_dir)}), tmp_path / "d",
                progress=False)


@pytest.mark.parametrize("key, value, message", [
    ("weight", 1.5, "distill.weight: 1.5 is above the maximum 1.0"),
    ("weight", -0.1, "distill.weight: -0.1 is below the minimum 0.0"),
    ("temperature", 0.0, "distill.temperature: 0.0 is below the minimum"),
    ("teacher", 3, "distill.teacher: expected str"),
])
def test_distill_keys_are_validated(key, value, message):
    with pytest.raises(config.ConfigError, match=message):
        config.resolve({"distill": {key: value}}, "t")
    assert config.resolve({}, "t")["distill"] == {"teacher": None, "weight": 0.5, "temperature": 2.0}
