"""Utilisation metrics, the Hutchinson Hessian-trace estimator, and the experiment runner on a tiny config."""

import json
import math

import numpy as np
import pytest
import torch
import yaml

from logicforge.errors import LogicforgeError
from logicforge.netlist import gates
from logicforge.netlist.format import Layer, Netlist
from logicforge.train import hessian
from logicforge.train.model import LogicNet
from logicforge.train.utilisation import constant_ops, utilisation


def test_constant_ops_are_false_and_true():
    names = [gates.NAMES[i] for i in np.flatnonzero(constant_ops())]
    assert sorted(names) == sorted([gates.NAMES[0], gates.NAMES[15]])
    for op in np.flatnonzero(constant_ops()):  # they ignore both inputs
        assert len({gates.output(int(op), a, b) for a in (0, 1) for b in (0, 1)}) == 1


def test_utilisation_definitions_on_a_hand_built_network():
    """Inputs 0..3. Layer 0: g0 = FALSE, g1 = AND(1, 2), g2 = AND(2, 3), g3 = FALSE with uniform logits.
    Outputs: A(g1, g2), which ignores g2, and AND(g0, g1). So g2 and g3 have no path to an output,
    g0 and g3 are constant, and g3's distribution has not collapsed."""
    l0_ops, l1_ops = [gates.FALSE, gates.AND, gates.AND, gates.FALSE], [gates.A, gates.AND]
    net = Netlist(4, 4, [[1]] * 4, [Layer(np.array(l0_ops), np.array([0, 1, 2, 3]), np.array([1, 2, 3, 0])),
                                    Layer(np.array(l1_ops), np.array([1, 0]), np.array([2, 1]))], ["x", "y"], 1)
    logits = [torch.full((4, 16), -10.0), torch.full((2, 16), -10.0)]
    for layer, ops in zip(logits, (l0_ops, l1_ops)):
        for n, op in enumerate(ops):
            layer[n, op] = 10.0
    logits[0][3] = 0.0  # uniform: max probability 1/16; its argmax is op 0 (FALSE), as in the netlist
    use = utilisation(logits, net)
    assert use["op_histogram_per_layer"] == [[2, 2] + [0] * 14, [0, 1, 0, 1] + [0] * 12]
    assert use["constant_fraction"] == pytest.approx(2 / 6)
    assert use["uncollapsed_fraction"] == pytest.approx(1 / 6)
    assert use["unused_fraction"] == pytest.approx(2 / 6)


def _tiny_model(seed=0):
    return LogicNet(6, 2, layers=2, width=4, group_size=2, tau=1.5, mode="softmax", seed=seed, init="gaussian",
                    backend="torch")


def _tiny_batch():
    g = torch.Generator().manual_seed(1)
    return (torch.rand(8, 6, generator=g) > 0.5).float(), torch.randint(0, 2, (8,), generator=g)


def test_relaxed_loss_is_the_softmax_networks_loss():
    model = _tiny_model()
    x, y = _tiny_batch()
    model.train()
    expected = torch.nn.functional.cross_entropy(model(x), y)
    torch.testing.assert_close(hessian.relaxed_loss(model, x, y), expected)


def test_hutchinson_matches_the_exact_hessian_trace():
    """Unbiased: with K probes the estimate is within 4 standard deviations of the exact trace, where the
    standard deviation follows from the exact Hessian (Var[v^T H v] = 2 * sum_{i != j} H_ij^2)."""
    model = _tiny_model()
    x, y = _tiny_batch()
    params = [layer.logits for layer in model.layers]
    loss_fn = lambda ps: hessian.relaxed_loss(model, x, y, ps)  # noqa: E731
    exact, h = hessian.exact_trace(loss_fn, params)
    assert h.shape == (16 * 8, 16 * 8)  # 4 + 4 gates and abs(exact) > 1e-3
    off = h - torch.diag(torch.diagonal(h))
    probes = 400
    sd = math.sqrt(2 * float((off ** 2).sum()) / probes)
    est = hessian.hutchinson_trace(loss_fn, params, probes=probes, seed=3)
    assert abs(est["trace"] - exact) < 4 * sd
    assert est["stderr"] == pytest.approx(sd, rel=0.3)  # the estimate's own error bar is right too


def test_hutchinson_is_exact_for_a_diagonal_hessian():
    """v^T H v = tr(H) for every sign vector when H is diagonal: one probe is exact."""
    w = torch.tensor([1.0, -2.0, 3.0])
    loss_fn = lambda ps: (w * ps[0] ** 2).sum() * 0.5  # noqa: E731
    est = hessian.hutchinson_trace(loss_fn, [torch.zeros(3)], probes=1)
    assert est["trace"] == pytest.approx(2.0)


TINY = {
    "base": {"dataset": "digits", "layers": 2, "width": 60, "epochs": 2, "batch_size": 128,
             "encoding": {"thresholds": 2}, "tau": 3.0},
    "estimators": ["softmax", "gumbel", "hard_st", "cage"],
    "estimator_overrides": {"softmax": {"init": "gaussian"}},
    "seeds": [0, 1],
    "gumbel_temperatures": [1.0, 0.5],
    "sweep_seeds": [0],
    "target_fraction": 0.5,
    "hessian": {"epochs": [1, 2], "probes": 2, "batch": 16},
}


def test_experiment_runner_on_a_tiny_config(tmp_path):
    from logicforge.cli import main

    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    out = tmp_path / "out"
    assert main(["experiment", "--config", str(cfg), "--out", str(out), "--quiet"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert sorted(res["runs"]) == sorted(["softmax-s0", "softmax-s1", "gumbel-t1-s0", "gumbel-t1-s1", "hard_st-t1-s0",
                                          "hard_st-t1-s1", "cage-t1-s0", "cage-t1-s1", "gumbel-t0.5-s0"])
    for rid, r in res["runs"].items():
        assert len(r["history"]) == 2
        assert all("hessian_trace" in h for h in r["history"]), rid
        if r["estimator"] in ("hard_st", "cage"):
            assert all(h["discretization_gap"] == 0 for h in r["history"]), rid
    g = res["groups"]["gumbel (T=1)"]
    assert g["n"] == 2 and len(g["curves"]["test_acc_discrete"]["mean"]) == 2
    assert res["target"]["accuracy"] == pytest.approx(
        0.5 * max(res["groups"]["softmax"]["curves"]["test_acc_discrete"]["mean"]))
    report = (out / "report.md").read_text()
    for section in ("## Final results", "## Time to target", "## Gumbel temperature sweep", "## Gate utilisation",
                    "## Hessian trace", "## The papers' claims", "Time-to-target ratio gumbel/softmax",
                    "at other target fractions"):
        assert section in report, section
    for claim in res["claims"]:
        assert claim["verdict"] in ("reproduced", "partly", "not")
    for plot in ("accuracy_vs_iterations.png", "accuracy_vs_seconds.png", "gap.png", "utilisation.png",
                 "op_histogram.png", "hessian_trace.png"):
        assert (out / "plots" / plot).stat().st_size > 1000, plot

    # Resumable: finished runs are not trained again; a deleted summary makes that run resume (here: its
    # checkpoint is complete, so it only re-exports) and the results are unchanged.
    before = (out / "runs" / "softmax-s0" / "checkpoint.pt").stat().st_mtime_ns
    (out / "runs" / "gumbel-t1-s1" / "summary.json").unlink()
    assert main(["experiment", "--config", str(cfg), "--out", str(out), "--quiet"]) == 0
    assert (out / "runs" / "softmax-s0" / "checkpoint.pt").stat().st_mtime_ns == before
    res2 = json.loads((out / "results.json").read_text())
    assert res2["groups"]["gumbel (T=1)"]["final"] == res["groups"]["gumbel (T=1)"]["final"]


@pytest.mark.parametrize("edit,match", [
    ({"estimators": ["softmax", "magic"]}, "'magic' is not one of"),
    ({"estimators": ["gumbel"]}, "softmax .* must be listed"),
    ({"colour": 1}, "unknown key 'colour'"),
    ({"target_fraction": 2}, "target_fraction"),
    ({"base": {"mode": "gumbel"}}, "base: mode is set by the experiment"),
    ({"base": {"widht": 3}}, "unknown key 'widht'"),
])
def test_bad_experiment_files_are_one_line_errors(tmp_path, edit, match):
    from logicforge.train import experiment

    spec = dict(TINY, **edit)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(LogicforgeError, match=match):
        experiment.load(path)


def test_trainer_metrics_use_the_shared_utilisation_and_the_cosine_schedule(tmp_path):
    from logicforge.train import config
    from logicforge.train.trainer import Trainer

    cfg = config.resolve({"dataset": "digits", "layers": 2, "width": 40, "epochs": 2, "batch_size": 256,
                          "encoding": {"thresholds": 2}, "lr": 0.1, "lr_schedule": "cosine", "lr_end_factor": 0.1,
                          "mode": "hard_st", "name": "t"}, "test")
    trainer = Trainer(cfg, tmp_path / "run", progress=False)
    total = cfg["epochs"] * trainer.steps_per_epoch()
    lrs = [trainer.lr_at(s) for s in range(total)]
    assert lrs[0] == pytest.approx(0.1) and lrs[-1] == pytest.approx(0.01)
    assert all(a > b for a, b in zip(lrs, lrs[1:]))
    (tmp_path / "run").mkdir()
    trainer.fit()
    last = trainer.history[-1]
    use = utilisation([layer.logits for layer in trainer.model.layers], trainer.netlist())
    assert last["constant_gate_fraction"] == use["constant_fraction"]
    assert last["unused_gate_fraction"] == use["unused_fraction"]
    assert last["uncollapsed_fraction"] == use["uncollapsed_fraction"]
    assert last["op_histogram_per_layer"] == use["op_histogram_per_layer"]
    assert last["lr"] == pytest.approx(lrs[-1])


def test_time_to_target_is_the_first_epoch_at_or_above_the_target():
    from logicforge.train.experiment import time_to_target

    hist = [{"epoch": e, "step": 10 * e, "epoch_seconds": 2.0, "test_acc_discrete": a}
            for e, a in ((1, 0.5), (2, 0.7), (3, 0.69), (4, 0.8))]
    assert time_to_target(hist, 0.7) == {"epoch": 2, "steps": 20, "seconds": 4.0}
    assert time_to_target(hist, 0.75) == {"epoch": 4, "steps": 40, "seconds": 8.0}
    assert time_to_target(hist, 0.81) is None
