"""node: lut4: learned 4-input tables with learned wiring (train/lut_model.py), their export
(train/export.py, lut_to_netlist) and the trainer around them (docs/training.md, "LUT4 nodes")."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from logicforge.errors import LogicforgeError
from logicforge.netlist import format as nf
from logicforge.netlist import reference
from logicforge.train import config
from logicforge.train.export import WIRE_TABLE, lut_to_netlist
from logicforge.train.lut_model import LutFn, LutNet, PickFn
from logicforge.train.trainer import Trainer, train

LUT = {"node": "lut4", "widths": [60, 30], "group_size": 6, "tau": 2.0, "epochs": 3, "batch_size": 64,
       "lr": 0.03, "encoding": {"thresholds": 3}}


def _bits_netlist(model: LutNet) -> nf.Netlist:
    """The model's netlist over 1-bit features (threshold 1): encoded bit i is feature i itself."""
    n = model.in_bits
    return lut_to_netlist(model, features=n, feature_width=1, thresholds=[[1]] * n,
                          class_names=[f"c{i}" for i in range(model.classes)])


def _check_parity(model: LutNet, net: nf.Netlist, x_features: np.ndarray, bits: torch.Tensor) -> None:
    model.eval()
    with torch.no_grad():
        scores = model(bits)
    ref_scores, ref_classes = reference.evaluate(net, x_features)
    np.testing.assert_array_equal(np.rint(scores.numpy() * model.tau).astype(np.int64), ref_scores)
    np.testing.assert_allclose(scores.numpy() * model.tau, ref_scores, atol=1e-5)
    np.testing.assert_array_equal(scores.argmax(1).numpy(), ref_classes)


@pytest.mark.parametrize("learn_wiring", [True, False])
@pytest.mark.parametrize("widths", [[40], [50, 30, 20]])
def test_export_is_bit_exact_on_random_bit_vectors(widths, learn_wiring):
    model = LutNet(48, 4, widths=widths, group_size=7, tau=3.0, seed=3, learn_wiring=learn_wiring)
    if learn_wiring:  # move the wiring away from its initial value, so the argmax matters
        with torch.no_grad():
            for layer in list(model.layers) + [model.head]:
                layer.w.add_(torch.randn(layer.w.shape, generator=torch.Generator().manual_seed(1)))
    net = _bits_netlist(model)
    x = np.random.default_rng(0).integers(0, 2, (700, 48))
    _check_parity(model, net, x, torch.from_numpy(x).float())
    # the netlist's shape: one LutLayer per hidden layer (own nodes first, then wires), a gate head
    assert [type(l) for l in net.layers] == [nf.LutLayer] * len(widths) + [nf.Layer]
    for layer, w in zip(net.layers, widths):
        extra = layer.table[w:]
        assert np.all(extra == WIRE_TABLE) and np.all(layer.ins[w:] == layer.ins[w:, :1])
    assert len(net.layers[-1]) == 4 * 7


def test_wires_forward_only_what_the_head_reads():
    model = LutNet(30, 2, widths=[20, 10, 8], group_size=5, tau=1.0, seed=0)
    net = _bits_netlist(model)
    from logicforge.train.lut_model import pins_used

    used = pins_used(model.head.tables(), 2)
    src = model.head.wiring()[used].tolist()  # concat indices the head's tables depend on
    offsets = [0, 30, 50, 60]  # x, h1, h2 start; h3 (the last layer) is read directly
    levels = [sum(c >= o for o in offsets[1:]) for c in set(src)]
    # a signal of level L (< 3) passes through layers L+1 .. 3 as one wire in each
    expected = sum(3 - lv for lv in levels if lv < 3)
    wires = sum(len(l) - w for l, w in zip(net.layers, [20, 10, 8]))
    assert wires == expected and wires > 0


def test_export_is_bit_exact_on_digits_after_training(make_cfg, tmp_path):
    """(and) a short lut4 run learns and writes a valid version-2 netlist."""
    cfg = make_cfg(LUT, epochs=4, val_fraction=0.2)
    summary = train(cfg, tmp_path / "run", progress=False)
    text = (tmp_path / "run" / "netlist.json").read_text()
    assert '"version": 2' in text
    net = nf.load(tmp_path / "run" / "netlist.json")
    assert [type(l) for l in net.layers] == [nf.LutLayer, nf.LutLayer, nf.Layer]
    assert net.extra["producer"]["node"] == "lut4"
    assert summary["test_acc_discrete"] > 0.6, summary  # chance is 0.1
    assert summary["discretization_gap"] == 0.0 and summary["node"] == "lut4" and summary["mode"] is None
    test = np.load(tmp_path / "run" / "test_set.npz")
    assert summary["test_acc_discrete"] == pytest.approx(reference.accuracy(net, test["x"], test["y"]))

    trainer = Trainer(cfg, tmp_path / "run", progress=False)
    trainer.load_checkpoint()
    _check_parity(trainer.model, net, test["x"], trainer.bits_test.float())
    # the model as trained in training mode computes the same (its forward is discrete)
    trainer.model.train()
    with torch.no_grad():
        np.testing.assert_array_equal(trainer.model(trainer.bits_test.float()).argmax(1).numpy(),
                                      reference.evaluate(net, test["x"])[1])
    m = [__import__("json").loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(m) == 4 and all(0 <= h["unused_gate_fraction"] <= 1 and h["val_acc_discrete"] is not None for h in m)


def _reads_near(model: LutNet, input_pos: torch.Tensor, radius: int) -> None:
    """Every pin of every node reads a source within ``radius`` rows and columns of the node's pixel
    (or the node had no source in reach)."""
    srcs = [input_pos]
    for layer in list(model.layers) + [model.head]:
        src = srcs[-1] if layer is not model.head else torch.cat(srcs)
        d = (src[layer.wiring()] - layer.pos[:, None, :]).abs().amax(-1)  # (n, k) Chebyshev distances
        none_in_reach = ((src[:, None, :] - layer.pos[None]).abs().amax(-1) > radius).all(0)
        assert bool(((d <= radius) | none_in_reach[:, None]).all())
        assert bool((d <= radius).any())
        srcs.append(layer.pos)


@pytest.mark.parametrize("learn_wiring", [True, False])
def test_local_wiring_reads_only_nearby_sources_before_and_after_training(learn_wiring):
    side, radius = 8, 1
    input_pos = torch.tensor([[f // side, f % side] for f in range(64) for _ in range(2)])  # 2 bits per pixel
    model = LutNet(128, 3, widths=[40, 20], group_size=4, tau=2.0, seed=1, learn_wiring=learn_wiring,
                   radius=radius, input_pos=input_pos, side=side)
    _reads_near(model, input_pos, radius)
    if learn_wiring:  # training moves the wiring, only within reach
        opt = torch.optim.Adam(model.parameters(), lr=0.5)
        x = torch.randint(0, 2, (64, 128)).float()
        y = torch.randint(0, 3, (64,))
        before = [l.wiring().clone() for l in model.layers]
        for _ in range(20):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        assert any(not torch.equal(b, l.wiring()) for b, l in zip(before, model.layers))
        _reads_near(model, input_pos, radius)
    net = _bits_netlist(model)  # and the export is exact
    xb = np.random.default_rng(0).integers(0, 2, (300, 128))
    _check_parity(model, net, xb, torch.from_numpy(xb).float())
    # without locality no node has a pixel (and the checkpoint holds none)
    free = LutNet(128, 3, widths=[40, 20], group_size=4, tau=2.0, seed=1, learn_wiring=learn_wiring)
    assert free.layers[0].pos is None and "pos" not in dict(free.named_buffers())


def test_wiring_radius_trains_on_digits_and_is_checked(make_cfg, tmp_path):
    cfg = make_cfg(LUT, epochs=2, wiring_radius=2)
    summary = train(cfg, tmp_path / "run", progress=False)
    assert summary["test_acc_discrete"] > 0.3  # chance is 0.1
    trainer = Trainer(cfg, tmp_path / "run", progress=False)
    trainer.load_checkpoint()
    feats = [f for f, ts in enumerate(trainer.thresholds) for _ in ts]
    _reads_near(trainer.model, torch.tensor([[f // 8, f % 8] for f in feats]), 2)
    net = nf.load(tmp_path / "run" / "netlist.json")
    test = np.load(tmp_path / "run" / "test_set.npz")
    _check_parity(trainer.model, net, test["x"], trainer.bits_test.float())
    with pytest.raises(config.ConfigError, match=r"wiring_radius: only for node: lut4") as e:
        config.resolve({"wiring_radius": 3}, "c.yaml")
    assert "\n" not in str(e.value)
    with pytest.raises(config.ConfigError, match=r"wiring_radius: -1"):
        config.resolve({"node": "lut4", "widths": [10], "wiring_radius": -1}, "c.yaml")
    bad = make_cfg(LUT, epochs=1, wiring_radius=2, dataset="breast_cancer")  # 30 features: not a square image
    with pytest.raises(LogicforgeError, match=r"^wiring_radius needs square single-channel images; 30 features"):
        Trainer(bad, tmp_path / "bad", progress=False)


def _multilinear(xs, theta):
    """The multilinear extension of sigmoid(theta) at xs: sum_m p[m] prod_i (x_i or 1 - x_i)."""
    k = xs.shape[-1]
    p = torch.sigmoid(theta)  # (n, 2**k)
    out = 0
    for m in range(2 ** k):
        term = p[:, m]
        for i in range(k):
            term = term * (xs[..., i] if (m >> i) & 1 else 1 - xs[..., i])
        out = out + term
    return out


@pytest.mark.parametrize("k", [2, 4])
def test_lutfn_forward_is_the_table_and_backward_the_multilinear_extension(k):
    g = torch.Generator().manual_seed(k)
    xs = (torch.rand(9, 13, k, generator=g) > 0.5).double()
    theta = torch.randn(13, 2 ** k, generator=g, dtype=torch.float64)
    upstream = torch.randn(9, 13, generator=g, dtype=torch.float64)

    a_x, a_t = xs.clone().requires_grad_(), theta.clone().requires_grad_()
    out = LutFn.apply(a_x, a_t)
    j = (xs.long() * (2 ** torch.arange(k))).sum(-1)
    assert torch.equal(out, (theta > 0).double().gather(1, j.t()).t())
    (out * upstream).sum().backward()

    b_x, b_t = xs.clone().requires_grad_(), theta.clone().requires_grad_()
    (_multilinear(b_x, b_t) * upstream).sum().backward()
    torch.testing.assert_close(a_x.grad, b_x.grad)
    torch.testing.assert_close(a_t.grad, b_t.grad)


def test_pickfn_reads_the_argmax_and_follows_its_backward_rule():
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(7, 11, generator=g) > 0.5).double()
    w = torch.randn(11, 5, generator=g, dtype=torch.float64)
    upstream = torch.randn(7, 5, generator=g, dtype=torch.float64)
    a_x, a_w = x.clone().requires_grad_(), w.clone().requires_grad_()
    out = PickFn.apply(a_x, a_w)
    assert torch.equal(out, x[:, w.argmax(0)])
    (out * upstream).sum().backward()
    # d w: as if the pins read x @ w; d x: through softmax(w) over the inputs
    b_w = w.clone().requires_grad_()
    ((x @ b_w) * upstream).sum().backward()
    b_x = x.clone().requires_grad_()
    ((b_x @ torch.softmax(w, 0)) * upstream).sum().backward()
    torch.testing.assert_close(a_w.grad, b_w.grad)
    torch.testing.assert_close(a_x.grad, b_x.grad)


def test_fixed_wiring_has_no_wiring_parameter():
    model = LutNet(20, 2, widths=[8], group_size=3, tau=1.0, learn_wiring=False)
    assert sorted(n for n, _ in model.named_parameters()) == ["head.theta", "layers.0.theta"]


def _state(run):
    return torch.load(run / "checkpoint.pt", weights_only=True)


class _Stop(Exception):
    pass


def _interrupt_after(epoch):
    def hook(trainer, metrics):  # runs before the epoch's checkpoint: that epoch is lost, as in a crash
        if trainer.epoch == epoch + 1:
            raise _Stop

    return hook


def test_interrupted_and_resumed_equals_uninterrupted(make_cfg, tmp_path):
    """A run stopped after epoch 2 (same config, cosine lr) and resumed ends byte-identical."""
    cfg = make_cfg(LUT, epochs=4, lr_schedule="cosine")
    train(cfg, tmp_path / "straight", progress=False)
    run = tmp_path / "split"
    run.mkdir()
    trainer = Trainer(cfg, run, progress=False, epoch_hook=_interrupt_after(2))
    with pytest.raises(_Stop):
        trainer.fit()
    assert _state(run)["epoch"] == 2 and not (run / "netlist.json").exists()
    train(cfg, run, resume=True, progress=False)
    a, b = _state(tmp_path / "straight"), _state(tmp_path / "split")
    assert a["epoch"] == b["epoch"] == 4 and a["step"] == b["step"]
    assert set(a["model"]) == set(b["model"]) and any(k.endswith(".w") for k in a["model"])
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert (tmp_path / "straight" / "netlist.json").read_bytes() == (tmp_path / "split" / "netlist.json").read_bytes()


def test_config_checks_the_combination_after_command_line_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("node: lut4\n")
    cfg = config.load(p, {"widths": [30, 10]})  # the override supplies what the file lacks
    assert cfg["node"] == "lut4" and cfg["widths"] == [30, 10] and cfg["learn_wiring"] is True
    with pytest.raises(config.ConfigError, match=r"command line: wire_penalty: 0.5 has no meaning") as e:
        config.load(p, {"widths": [30], "wire_penalty": 0.5})
    assert "\n" not in str(e.value)


def test_example_config_loads():
    cfg = config.load("configs/digits_lut4.yaml")
    assert cfg["node"] == "lut4" and cfg["widths"]


def test_default_node_is_the_gate_network_unchanged(make_cfg, tmp_path):
    base = {"layers": 2, "width": 120, "epochs": 1, "batch_size": 64, "lr": 0.1, "tau": 3.0,
            "encoding": {"thresholds": 3}, "backend": "torch"}
    implicit, explicit = make_cfg(base), make_cfg(base, node="gate")
    assert implicit == explicit and implicit["node"] == "gate"
    train(implicit, tmp_path / "a", progress=False)
    train(explicit, tmp_path / "b", progress=False)
    text = (tmp_path / "a" / "netlist.json").read_bytes()
    assert text == (tmp_path / "b" / "netlist.json").read_bytes()
    net = nf.load(tmp_path / "a" / "netlist.json")
    assert b'"version": 1' in text and not net.has_luts
    assert net.extra["producer"] == {"tool": "logicforge", "dataset": "digits", "mode": "gumbel"}


def test_checkpoint_from_before_the_node_keys_still_resumes(make_cfg, tmp_path):
    base = {"layers": 2, "width": 120, "epochs": 1, "batch_size": 64, "lr": 0.1, "tau": 3.0,
            "encoding": {"thresholds": 3}, "backend": "torch"}
    cfg = make_cfg(base)
    train(cfg, tmp_path / "a", progress=False)
    st = _state(tmp_path / "a")
    for key in ("node", "learn_wiring"):
        del st["config"][key]
    torch.save(st, tmp_path / "a" / "checkpoint.pt")
    summary = train(dict(cfg, epochs=2), tmp_path / "a", resume=True, progress=False)
    assert summary["epochs"] == 2


KILL_CONFIG = """\
dataset: digits
node: lut4
encoding: {method: quantile, thresholds: 3}
widths: [400, 200]
group_size: 20
tau: 4.0
epochs: 30
batch_size: 32
lr: 0.03
lr_schedule: cosine
seed: 2
threads: 1
"""


@pytest.mark.slow
def test_sigkill_then_resume_is_byte_identical(tmp_path):
    """A real ``logicforge train`` process killed mid-run and resumed (the pattern of
    tests/test_kill_resume.py) ends with the uninterrupted run's netlist, byte for byte."""
    import os
    import signal
    import time

    from test_kill_resume import _train

    (tmp_path / "k.yaml").write_text(KILL_CONFIG)

    def run(runs, *extra, wait=True):
        return _train(tmp_path, runs, *extra, wait=wait)

    def done(run_dir):
        try:
            return len((run_dir / "metrics.jsonl").read_text().splitlines())
        except FileNotFoundError:
            return 0

    straight = run(tmp_path / "a")
    assert straight.returncode == 0, straight.stderr
    killed = tmp_path / "b" / "k"
    proc = run(tmp_path / "b", wait=False)
    deadline = time.monotonic() + 300
    while done(killed) < 3:
        assert proc.poll() is None, f"training ended early: {proc.stderr.read()}"
        assert time.monotonic() < deadline, "training did not get going"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert _state(killed)["epoch"] < 30, "the run finished before it could be killed: make it longer"
    assert not (killed / "netlist.json").exists()
    resumed = run(tmp_path / "b", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert (tmp_path / "a" / "k" / "netlist.json").read_bytes() == (killed / "netlist.json").read_bytes()


def test_netlist_passes_remove_the_wires_and_keep_the_function():
    """The exported netlist through the lead's passes: same scores, and no wire node survives."""
    from logicforge.netlist import passes
    from logicforge.train.trainer import lut_histogram

    model = LutNet(40, 3, widths=[30, 20, 10], group_size=5, tau=2.0, seed=1)
    net = _bits_netlist(model)
    hist = lut_histogram(net)
    assert hist["LUT4"] == 60 and hist["LUT4_wire"] > 0
    g, _ = passes.optimize(net)
    assert g.num_luts <= 60
    x = np.random.default_rng(0).integers(0, 2, (1000, 40))
    np.testing.assert_array_equal(passes.evaluate(g, x)[0], reference.evaluate(net, x)[0])


def test_inputs_from_a_config_trains_it_first_and_keeps_its_live_bits(tmp_path):
    """``encoding.inputs_from``: a config file's run is trained first (then reused), and the network
    reads exactly the encoded bits that run's netlist keeps after the passes."""
    from logicforge.netlist import passes

    (tmp_path / "pool.yaml").write_text("dataset: digits\nencoding: {method: quantile, thresholds: 3}\n"
                                        "layers: 2\nwidth: 60\ngroup_size: 4\nepochs: 2\nseed: 1\nthreads: 1\n")
    (tmp_path / "lut.yaml").write_text(f"dataset: digits\nnode: lut4\nwidths: [30]\ngroup_size: 4\nepochs: 2\n"
                                       f"encoding: {{inputs_from: {tmp_path / 'pool.yaml'}}}\nthreads: 1\n")
    runs = tmp_path / "runs"
    train(config.load(tmp_path / "lut.yaml"), runs / "lut", progress=False)
    pool_net = nf.load(runs / "pool" / "netlist.json")
    live = passes.optimize(pool_net)[0].inputs
    assert 0 < len(live) < pool_net.num_inputs  # the pool run's passes dropped some bits
    lut_net = nf.load(runs / "lut" / "netlist.json")
    assert lut_net.encoded_bits() == sorted(live)
    stamp = (runs / "pool" / "netlist.json").stat().st_mtime_ns
    train(config.load(tmp_path / "lut.yaml"), runs / "lut2", progress=False)  # the finished pool run is reused
    assert (runs / "pool" / "netlist.json").stat().st_mtime_ns == stamp
    assert nf.load(runs / "lut2" / "netlist.json").to_dict() == lut_net.to_dict()


@pytest.mark.parametrize("source,needle", [
    ("missing.json", "no such netlist file"),
    ("wrong_features.json", "encodes 3 features of 4 bits, the dataset has 64 of 5"),
])
def test_inputs_from_bad_sources_are_one_line_errors(tmp_path, source, needle):
    from logicforge.errors import LogicforgeError
    from logicforge.netlist import generate

    generate.random_netlist(np.random.default_rng(0), features=3).save(tmp_path / "wrong_features.json")
    cfg = config.load(None, {"node": "lut4", "widths": [10], "epochs": 1,
                             "encoding.inputs_from": str(tmp_path / source)})
    with pytest.raises(LogicforgeError, match=needle) as e:
        train(cfg, tmp_path / "run", progress=False)
    assert "\n" not in str(e.value)
