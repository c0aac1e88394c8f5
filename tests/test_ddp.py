"""Multi-process training: 2 ranks (gloo, CPU) end where 1 process ends on the same global batches.

The 2-rank run goes through the real launcher (``logicforge train --nproc 2`` re-runs itself under
``torch.distributed.run``); the 1-process run is the same command without ``--nproc``. The Gumbel samples
of step s are a function of (seed, s) on every rank, and DDP's mean gradient equals the 1-process
gradient (the trainer scales each rank's summed loss by world / global batch), so the parameters must
agree to float tolerance. A different sample on one rank, or a wrong loss scale, moves them by ~lr.
The second case adds the wire penalty and a discrete fine-tune (frozen gates, hard straight-through):
every rank must freeze the same gates and zero their gradients before DDP's mean is applied.
"""

import os
import subprocess
import sys

import pytest
import torch

from logicforge.train import config, cpu_kernel
from logicforge.train.trainer import Trainer

# digits has 1437 training samples: batch 359 gives four odd-sized global batches (180 + 179 per rank)
# and a last batch of 1 sample, so rank 1 also takes a step with an empty share.
ARGS = ["--dataset", "digits", "--layers", "2", "--width", "128", "--epochs", "2", "--batch_size", "359",
        "--lr", "0.05", "--encoding.thresholds", "3", "--seed", "4", "--quiet", "--name", "r"]
GUMBEL = ["--mode", "gumbel"]
FINETUNE = ["--mode", "softmax", "--init", "gaussian", "--wire_penalty", "0.1",
            "--finetune_epochs", "2", "--finetune_lr", "0.05"]


def _env():
    env = {k: v for k, v in os.environ.items()
           if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env["OMP_NUM_THREADS"] = "1"  # what torchrun gives each rank; OpenMP spinning on 2 busy cores is slow
    return env


def _train(runs_dir, backend, nproc, extra):
    cmd = [sys.executable, "-m", "logicforge", "train", *ARGS, *extra, "--backend", backend,
           "--runs-dir", str(runs_dir)]
    if nproc > 1:
        cmd += ["--nproc", str(nproc)]
    res = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, f"{' '.join(cmd)}\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return torch.load(runs_dir / "r" / "checkpoint.pt", weights_only=True)


@pytest.mark.slow
@pytest.mark.parametrize("extra, steps", [(GUMBEL, 10), (FINETUNE, 20)], ids=["gumbel", "softmax-finetune"])
def test_two_ranks_end_with_the_parameters_of_one_process(tmp_path, extra, steps):
    backend = "cpp" if cpu_kernel.available() else "torch"
    one = _train(tmp_path / "one", backend, 1, extra)
    two = _train(tmp_path / "two", backend, 2, extra)
    assert one["step"] == two["step"] == steps
    if extra is FINETUNE:
        assert len(one["frozen"]) == len(two["frozen"]) == 2
        for f1, f2 in zip(one["frozen"], two["frozen"]):
            assert torch.equal(f1, f2)
        frozen = torch.cat(one["frozen"])
        assert 0 < int(frozen.sum()) < frozen.numel()  # the fine-tune trains some gates and freezes others
    init = "gaussian" if extra is FINETUNE else "residual"  # the runs' own initial logits
    start = Trainer(config.load(None, {"dataset": "digits", "layers": 2, "width": 128, "encoding.thresholds": 3,
                                       "seed": 4, "backend": backend, "init": init}),
                    tmp_path / "unused", progress=False).model.state_dict()
    assert one["model"].keys() == two["model"].keys()
    for k in one["model"]:
        # Most entries agree to ~1e-6; Adam can turn the rounding difference of a near-zero gradient
        # (two partial sums vs one sum) into a slightly different update: allow 1e-3 of one step (lr).
        torch.testing.assert_close(two["model"][k], one["model"][k], rtol=0, atol=5e-5, msg=k)
        if k.endswith("logits"):
            assert (one["model"][k] - start[k]).abs().max() > 0.05, f"{k} did not train"
    loss = lambda st: torch.tensor([h["loss"] for h in st["history"]])  # noqa: E731
    torch.testing.assert_close(loss(two), loss(one), rtol=1e-5, atol=0)  # all ranks' losses are counted


def test_ranks_split_every_global_batch_into_contiguous_shares(tmp_path):
    cfg = config.load(None, {"dataset": "digits", "layers": 1, "width": 10, "batch_size": 359, "backend": "torch"})
    t = Trainer(cfg, tmp_path, progress=False)
    whole = list(t.batches(3))
    t.world = 2
    shares = []
    for rank in range(2):
        t.rank = rank
        shares.append(list(t.batches(3)))
    assert [len(idx) for _, idx in whole] == [359, 359, 359, 359, 1]
    for (n, idx), (n0, s0), (n1, s1) in zip(whole, *shares):
        assert n == n0 == n1 == len(idx)  # every rank knows the global batch size (the loss scale)
        assert torch.equal(torch.cat([s0, s1]), idx)
    assert len(shares[1][-1][1]) == 0  # the 1-sample batch leaves rank 1 an empty share
