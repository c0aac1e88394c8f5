"""Crash safety: SIGKILL a real ``logicforge train`` process mid-training, resume it, and end
bit-identical (netlist and every parameter and optimiser tensor) to an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

CONFIG = """\
dataset: digits
encoding: {method: quantile, thresholds: 3}
layers: 2
width: 1500
epochs: 30
batch_size: 32
lr: 0.05
tau: 4.0
seed: 5
threads: 1
"""


def _train(tmp_path, runs, *extra, wait=True):
    cmd = [sys.executable, "-m", "logicforge", "train", "--config", str(tmp_path / "k.yaml"),
           "--runs-dir", str(runs), "--quiet", *extra]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    if wait:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


def _epochs_done(run) -> int:
    try:
        return len((run / "metrics.jsonl").read_text().splitlines())
    except FileNotFoundError:
        return 0


def _tensors(obj, prefix=""):
    """Every tensor in a (nested) state dict, by path."""
    out = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(_tensors(v, f"{prefix}/{k}"))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out.update(_tensors(v, f"{prefix}/{i}"))
    elif isinstance(obj, torch.Tensor):
        out[prefix] = obj
    return out


@pytest.mark.slow
def test_sigkill_then_resume_is_bit_identical(tmp_path):
    (tmp_path / "k.yaml").write_text(CONFIG)
    straight = _train(tmp_path, tmp_path / "a")
    assert straight.returncode == 0, straight.stderr

    run = tmp_path / "b" / "k"
    proc = _train(tmp_path, tmp_path / "b", wait=False)
    deadline = time.monotonic() + 600
    while _epochs_done(run) < 3:  # kill once a few epochs are done, in the middle of the next
        assert proc.poll() is None, f"training ended early: {proc.stderr.read()}"
        assert time.monotonic() < deadline, "training did not get going"
        time.sleep(0.05)
    done_at_kill = _epochs_done(run)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert done_at_kill < 30, "the run finished before it could be killed: make it longer"

    st = torch.load(run / "checkpoint.pt", weights_only=True)  # a whole, loadable checkpoint
    # at most the epoch in progress is lost: the checkpoint has every epoch that was reported
    assert st["epoch"] >= done_at_kill
    assert not (run / "netlist.json").exists()

    resumed = _train(tmp_path, tmp_path / "b", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    a_dir = tmp_path / "a" / "k"
    assert (a_dir / "netlist.json").read_bytes() == (run / "netlist.json").read_bytes()
    a = torch.load(a_dir / "checkpoint.pt", weights_only=True)
    b = torch.load(run / "checkpoint.pt", weights_only=True)
    assert a["epoch"] == b["epoch"] == 30 and a["step"] == b["step"]
    ta, tb = _tensors({"model": a["model"], "optimizer": a["optimizer"]}), \
        _tensors({"model": b["model"], "optimizer": b["optimizer"]})
    assert ta.keys() == tb.keys() and ta
    for k in ta:
        assert torch.equal(ta[k], tb[k]), k
    strip = lambda h: [{k: v for k, v in m.items() if k != "epoch_seconds"} for m in h]
    assert strip(a["history"]) == strip(b["history"])
