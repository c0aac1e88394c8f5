"""Model selection without the test set (val_fraction) and the wire penalty (wire_penalty)."""

import json

import numpy as np
import pytest
import torch

from logicforge.netlist import format as nf
from logicforge.netlist import gates, passes, reference
from logicforge.train import config
from logicforge.train import data as datasets
from logicforge.train.encoding import fit_thresholds
from logicforge.train.trainer import Trainer, train

SMALL = {"widths": [120, 60], "group_size": 4, "epochs": 3, "batch_size": 64, "lr": 0.05, "tau": 2.0,
         "mode": "softmax", "init": "gaussian", "encoding": {"thresholds": 3}, "backend": "torch"}


def test_hold_out_is_a_fixed_stratified_partition_of_the_training_split():
    ds = datasets.load_dataset("digits")
    rest, xv, yv = datasets.hold_out(ds, 0.2)
    again = datasets.hold_out(ds, 0.2)
    assert np.array_equal(xv, again[1]) and np.array_equal(yv, again[2])  # fixed, not seeded by the run
    assert len(rest.y_train) + len(yv) == len(ds.y_train)
    for c in range(10):  # every class gives round(0.2 * n_c) samples
        n_c = int(np.sum(ds.y_train == c))
        assert int(np.sum(yv == c)) == round(0.2 * n_c)
    # a partition: the rows of rest and val together are exactly the training rows, each once
    rows = lambda x, y: sorted(map(tuple, np.column_stack([x, y]).tolist()))  # noqa: E731
    assert rows(np.vstack([rest.x_train, xv]), np.concatenate([rest.y_train, yv])) == rows(ds.x_train, ds.y_train)
    assert np.array_equal(rest.x_test, ds.x_test) and np.array_equal(rest.y_test, ds.y_test)
    small = datasets.hold_out(ds, 0.001)[2]  # at least one of each class
    assert sorted(np.unique(small).tolist()) == list(range(10)) and len(small) == 10


@pytest.mark.parametrize("bad", [1.0, 1.5, -0.1])
def test_val_fraction_out_of_range_is_a_config_error(bad):
    with pytest.raises(config.ConfigError, match="val_fraction"):
        config.resolve({"val_fraction": bad}, "t")
    assert config.resolve({"val_fraction": 0.25}, "t")["val_fraction"] == 0.25
    with pytest.raises(config.ConfigError, match="wire_penalty"):
        config.resolve({"wire_penalty": -1.0}, "t")


def test_validation_accuracy_is_logged_every_epoch_on_held_out_samples(make_cfg, tmp_path):
    cfg = make_cfg(SMALL, val_fraction=0.25, epochs=6)
    summary = train(cfg, tmp_path / "run", progress=False)
    trainer = Trainer(cfg, tmp_path / "run", progress=False)
    full = datasets.load_dataset("digits")
    _, xv, yv = datasets.hold_out(full, 0.25)
    assert np.array_equal(trainer.x_val, xv) and len(trainer.y_train) == len(full.y_train) - len(yv)
    # thresholds are fitted on the remaining training samples only
    assert trainer.thresholds == fit_thresholds(trainer.dataset.x_train, 3, "quantile")
    history = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(history) == 6 and all(0.0 <= h["val_acc_discrete"] <= 1.0 for h in history)
    net = nf.load(tmp_path / "run" / "netlist.json")
    assert history[-1]["val_acc_discrete"] == pytest.approx(reference.accuracy(net, xv, yv))
    assert summary["val_acc_discrete"] == history[-1]["val_acc_discrete"] and summary["val_samples"] == len(yv)
    assert summary["val_acc_discrete"] > 0.5  # chance is 0.1
    # without it: no validation set, the whole training split is used
    plain = Trainer(make_cfg(SMALL), tmp_path / "plain", progress=False)
    assert plain.x_val is None and len(plain.y_train) == len(full.y_train)


def test_two_input_probability_is_the_mean_softmax_mass_on_gates_that_read_both_inputs(make_cfg, tmp_path):
    trainer = Trainer(make_cfg(SMALL, init="residual", residual_logit=3.0), tmp_path / "r", progress=False)
    p = torch.softmax(torch.tensor([3.0] + [0.0] * 15), 0)  # the residual init: A has logit 3
    two = gates.READS_BOTH
    assert int(two.sum()) == 10  # six of the sixteen ops are wires, inversions or constants
    expected = float(p[1:].sum()) * 10 / 15  # A reads one input; 10 of the other 15 read both
    assert float(trainer.two_input_probability().detach()) == pytest.approx(expected, rel=1e-6)


def test_wire_penalty_leaves_fewer_live_gates_after_the_passes(make_cfg, tmp_path):
    live = {}
    for w in (0.0, 3.0):
        train(make_cfg(SMALL, epochs=4, wire_penalty=w), tmp_path / f"w{w}", progress=False)
        graph, _ = passes.optimize(nf.load(tmp_path / f"w{w}" / "netlist.json"))
        live[w] = graph.num_gates
    assert live[3.0] < 0.7 * live[0.0], live


def test_wire_penalty_ramp_rises_linearly_then_holds(make_cfg, tmp_path):
    cfg = make_cfg(SMALL, wire_penalty=0.4, wire_penalty_ramp=0.5, epochs=4)
    tr = Trainer(cfg, tmp_path / "ramp", progress=False)
    total = 4 * tr.steps_per_epoch()
    assert tr.wire_penalty_at(0) == 0.0
    assert tr.wire_penalty_at(total // 4) == pytest.approx(0.4 * (total // 4) / (total / 2))
    assert tr.wire_penalty_at(total // 2) == pytest.approx(0.4)
    assert tr.wire_penalty_at(total - 1) == pytest.approx(0.4)
    flat = Trainer(make_cfg(SMALL, wire_penalty=0.4), tmp_path / "flat", progress=False)
    assert flat.wire_penalty_at(0) == flat.wire_penalty_at(10_000) == 0.4
    with pytest.raises(config.ConfigError, match="wire_penalty_ramp: 1.5 is above the maximum 1.0"):
        config.resolve({"wire_penalty_ramp": 1.5}, "t")


def test_ramped_penalty_trains_its_first_step_unpenalised(make_cfg, tmp_path):
    """One step per epoch (the batch holds the whole training split): under a ramp the first epoch is
    exactly the unpenalised one; a constant penalty moves the logits differently."""
    runs = {}
    for name, kw in {"none": {}, "ramp": {"wire_penalty": 5.0, "wire_penalty_ramp": 1.0},
                     "flat": {"wire_penalty": 5.0}}.items():
        tr = Trainer(make_cfg(SMALL, epochs=2, batch_size=4096, **kw), tmp_path / name, progress=False)
        assert tr.steps_per_epoch() == 1
        tr.train_epoch()
        runs[name] = torch.cat([layer.logits.detach().flatten() for layer in tr.model.layers])
    assert torch.equal(runs["none"], runs["ramp"])
    assert not torch.allclose(runs["none"], runs["flat"])
