"""The trainer end to end on small networks: export parity, resume, reproducibility."""

import numpy as np
import pytest
import torch

from logicforge.errors import LogicforgeError
from logicforge.netlist import format as nf
from logicforge.netlist import reference
from logicforge.train.trainer import Trainer, train

SMALL = {"layers": 2, "width": 200, "epochs": 3, "batch_size": 64, "lr": 0.1, "tau": 3.0,
         "residual_logit": 2.0, "encoding": {"thresholds": 3}, "backend": "torch"}


@pytest.mark.parametrize("mode", ["gumbel", "softmax"])
def test_discrete_predictions_equal_reference_on_exported_netlist(make_cfg, tmp_path, mode):
    cfg = make_cfg(SMALL, mode=mode, epochs=8)
    summary = train(cfg, tmp_path / "run", progress=False)
    net = nf.load(tmp_path / "run" / "netlist.json")
    test = np.load(tmp_path / "run" / "test_set.npz")
    scores, classes = reference.evaluate(net, test["x"])

    trainer = Trainer(cfg, tmp_path / "run", progress=False)
    trainer.load_checkpoint()
    trainer.model.eval()
    with torch.no_grad():
        model_scores = trainer.model(trainer.bits_test.float())
    np.testing.assert_allclose(model_scores.numpy() * cfg["tau"], scores, atol=1e-4)
    np.testing.assert_array_equal(model_scores.argmax(1).numpy(), classes)
    assert summary["test_acc_discrete"] == pytest.approx(float(np.mean(classes == test["y"])))
    assert summary["test_acc_discrete"] > 0.6  # chance is 0.1; 8 epochs give about 0.8
    for key in ("mode", "test_acc_discrete", "test_acc_train_mode", "discretization_gap",
                "unused_gate_fraction", "gates", "epochs", "train_seconds"):
        assert key in summary
    assert summary["mode"] == mode and summary["epochs"] == 8
    assert len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) == 8
    assert sorted(p.name for p in (tmp_path / "run" / "plots").iterdir()) == ["accuracy.png", "gap.png", "gates.png"]


def _state(run):
    st = torch.load(run / "checkpoint.pt", weights_only=True)
    return st


def test_resume_is_equivalent_to_an_uninterrupted_run(make_cfg, tmp_path):
    cfg = make_cfg(SMALL, epochs=4)
    train(cfg, tmp_path / "straight", progress=False)
    train(dict(cfg, epochs=2), tmp_path / "split", progress=False)
    train(cfg, tmp_path / "split", resume=True, progress=False)
    a, b = _state(tmp_path / "straight"), _state(tmp_path / "split")
    assert a["epoch"] == b["epoch"] == 4 and a["step"] == b["step"]
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    strip = lambda h: [{k: v for k, v in m.items() if k != "epoch_seconds"} for m in h]  # noqa: E731
    assert strip(a["history"]) == strip(b["history"])
    assert (tmp_path / "straight" / "netlist.json").read_text() == (tmp_path / "split" / "netlist.json").read_text()


def test_same_seed_same_result_and_different_seed_differs(make_cfg, tmp_path):
    cfg = make_cfg(SMALL, epochs=1)
    train(cfg, tmp_path / "a", progress=False)
    train(cfg, tmp_path / "b", progress=False)
    train(dict(cfg, seed=1), tmp_path / "c", progress=False)
    read = lambda p: (p / "netlist.json").read_text()  # noqa: E731
    assert read(tmp_path / "a") == read(tmp_path / "b")
    assert read(tmp_path / "a") != read(tmp_path / "c")


def test_refuses_to_overwrite_a_run(make_cfg, tmp_path):
    cfg = make_cfg(SMALL, epochs=1)
    train(cfg, tmp_path / "a", progress=False)
    with pytest.raises(LogicforgeError, match="--resume"):
        train(cfg, tmp_path / "a", progress=False)


def test_resume_rejects_a_changed_config(make_cfg, tmp_path):
    cfg = make_cfg(SMALL, epochs=1)
    train(cfg, tmp_path / "a", progress=False)
    with pytest.raises(LogicforgeError, match="differs.*lr"):
        train(dict(cfg, lr=0.5), tmp_path / "a", resume=True, progress=False)


def test_gumbel_training_is_binary_throughout():
    """With hard samples every activation in gumbel mode stays exactly 0 or 1."""
    from logicforge.train.model import LogicNet

    net = LogicNet(30, 3, layers=3, width=40, group_size=5, tau=1.0, mode="gumbel")
    acts = []
    for layer in net.layers:
        layer.register_forward_hook(lambda m, i, o: acts.append(o.detach()))
    net.train()
    net((torch.rand(16, 30) > 0.5).float(), noise_seed=3)
    for a in acts:
        assert torch.all((a == 0) | (a == 1))
