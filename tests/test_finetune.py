"""The discrete fine-tune (finetune_epochs): wires, inversions and constants stay, the two-input gates
train hard straight-through, and an interrupted or added fine-tune ends where an uninterrupted one does."""

import json

import pytest

from logicforge.netlist import format as nf
from logicforge.netlist import gates
from logicforge.train import config
from logicforge.train.trainer import Trainer, train

# softmax training with a wire penalty (the up5k recipe in small), then a fine-tune with a large
# learning rate so that some two-input gates do change in three epochs
SMALL = {"widths": [120, 60], "group_size": 4, "epochs": 4, "batch_size": 64, "lr": 0.05, "tau": 2.0,
         "mode": "softmax", "init": "gaussian", "encoding": {"thresholds": 3}, "backend": "torch",
         "wire_penalty": 0.02, "finetune_lr": 0.3}


def _ops(path):
    return [layer.op.tolist() for layer in nf.load(path).layers]


def _two_input(op):
    return bool(gates.READS_BOTH[op])


def test_finetune_keeps_every_gate_that_does_not_read_both_inputs(make_cfg, tmp_path):
    train(make_cfg(SMALL, finetune_epochs=0), tmp_path / "plain", progress=False)
    train(make_cfg(SMALL, finetune_epochs=3), tmp_path / "ft", progress=False)
    before, after = _ops(tmp_path / "plain" / "netlist.json"), _ops(tmp_path / "ft" / "netlist.json")
    changed = 0
    for lb, la in zip(before, after):
        for b, a in zip(lb, la):
            if not _two_input(b):
                assert a == b  # frozen: what the passes remove stays removable
            changed += a != b
    assert changed > 0  # the fine-tune did move some two-input gates
    count = lambda layers: sum(_two_input(op) for ops in layers for op in ops)  # noqa: E731
    assert count(after) <= count(before)


def test_finetune_runs_hard_and_logs_its_epochs(make_cfg, tmp_path):
    summary = train(make_cfg(SMALL, finetune_epochs=2), tmp_path / "ft", progress=False)
    history = [json.loads(line) for line in (tmp_path / "ft" / "metrics.jsonl").read_text().splitlines()]
    assert [h["finetune"] for h in history] == [False] * 4 + [True] * 2
    assert summary["epochs"] == 6
    # hard forward: the network as trained is the discrete one
    assert history[-1]["discretization_gap"] == pytest.approx(0.0, abs=1e-9)


def test_an_interrupted_finetune_resumes_where_it_stopped(make_cfg, tmp_path):
    cfg = make_cfg(SMALL, finetune_epochs=3)
    train(cfg, tmp_path / "whole", progress=False)

    def stop_in_the_finetune(trainer, metrics):
        if trainer.epoch == 6:  # epoch 5 (the first fine-tune epoch) is checkpointed
            raise KeyboardInterrupt

    (tmp_path / "cut").mkdir()
    with pytest.raises(KeyboardInterrupt):
        Trainer(cfg, tmp_path / "cut", progress=False, epoch_hook=stop_in_the_finetune).fit()
    train(cfg, tmp_path / "cut", resume=True, progress=False)
    assert (tmp_path / "cut" / "netlist.json").read_bytes() == (tmp_path / "whole" / "netlist.json").read_bytes()


def test_a_finetune_can_be_added_to_a_finished_run(make_cfg, tmp_path):
    train(make_cfg(SMALL, finetune_epochs=3), tmp_path / "whole", progress=False)
    train(make_cfg(SMALL, finetune_epochs=0), tmp_path / "later", progress=False)
    train(make_cfg(SMALL, finetune_epochs=3), tmp_path / "later", resume=True, progress=False)
    assert (tmp_path / "later" / "netlist.json").read_bytes() == (tmp_path / "whole" / "netlist.json").read_bytes()


def test_a_run_in_its_finetune_cannot_move_its_main_epochs(make_cfg, tmp_path):
    from logicforge.errors import LogicforgeError

    train(make_cfg(SMALL, finetune_epochs=1), tmp_path / "ft", progress=False)
    with pytest.raises(LogicforgeError, match="fine-tune, which began after epoch 4"):
        train(make_cfg(SMALL, epochs=6, finetune_epochs=1), tmp_path / "ft", resume=True, progress=False)


@pytest.mark.parametrize("key,bad", [("finetune_epochs", -1), ("finetune_lr", -0.1), ("finetune_epochs", 1.5)])
def test_finetune_keys_are_checked(key, bad):
    with pytest.raises(config.ConfigError, match=key):
        config.resolve({key: bad}, "t")
