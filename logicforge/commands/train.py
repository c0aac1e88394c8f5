"""``logicforge train``: train a network from a YAML config and export its netlist.

With ``hardware: {board, max_lcs}`` in the config, the hardware cost model is made here and passed
into the trainer as a callable: train/ itself imports no hardware code.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from logicforge.commands import options
from logicforge.train.config import SCHEMA


def _dest(key: str) -> str:
    return "cfg__" + key.replace(".", "__")


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="YAML config (default: built-in defaults)")
    p.add_argument("--runs-dir", default="runs", metavar="DIR", help="parent of run directories (default runs/)")
    p.add_argument("--resume", action="store_true", help="continue runs/<name>/ from its last checkpoint")
    p.add_argument("--nproc", type=int, default=1, metavar="N",
                   help="train with N processes (torchrun, DistributedDataParallel)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")
    g = p.add_argument_group("config overrides (any key of the config file)")
    for key, spec in SCHEMA.items():
        choices = f" {{{','.join(spec.kind)}}}" if isinstance(spec.kind, tuple) else ""
        g.add_argument(f"--{key}", dest=_dest(key), metavar="VALUE", default=argparse.SUPPRESS,
                       help=f"{spec.help}{choices} (default {spec.default})")


def make_estimator(cfg: dict):
    """netlist -> {lcs, luts, ffs, ...} for ``cfg['hardware']['board']``, or None without one."""
    hw = cfg.get("hardware") or {}
    if not hw.get("board"):
        if hw.get("max_lcs"):
            from logicforge.errors import LogicforgeError

            raise LogicforgeError("hardware.max_lcs needs hardware.board (e.g. icebreaker)")
        return None
    from logicforge.boards.estimate import estimate
    from logicforge.boards.registry import get_board

    board = get_board(hw["board"]).name  # one-line error for an unknown board, before training

    def estimator(netlist) -> dict:
        return estimate(netlist, board=board, layers_per_stage=hw.get("layers_per_stage"), encoder=hw.get("encoder"))

    return estimator


def run(args) -> int:
    from pathlib import Path

    from logicforge.errors import LogicforgeError
    from logicforge.train import config

    overrides = {key: config.parse_override(key, getattr(args, _dest(key)))
                 for key in SCHEMA if hasattr(args, _dest(key))}
    cfg = config.load(args.config, overrides)
    options.at_least(args, "nproc", 1)
    if args.nproc > 1 and "WORLD_SIZE" not in os.environ:
        return _launch(args.nproc)
    from logicforge.train.trainer import train

    run_dir = Path(args.runs_dir) / cfg["name"]
    try:
        estimator = make_estimator(cfg)
        summary = train(cfg, run_dir, resume=args.resume, progress=not args.quiet, estimator=estimator)
    except KeyboardInterrupt:
        raise LogicforgeError(f"interrupted; the last finished epoch is saved: continue with --resume "
                              f"(make train ARGS=--resume)") from None
    if summary:
        print(f"\n{run_dir}: discrete test accuracy {summary['test_acc_discrete']:.4f} "
              f"(train mode {summary['test_acc_train_mode']:.4f}, gap {summary['discretization_gap']:+.4f}), "
              f"{summary['gates']} gates, unused {summary['unused_gate_fraction']:.3f}, "
              f"{summary['train_seconds']:.1f}s training")
    return 0


def _launch(nproc: int) -> int:
    """Re-run this command under torchrun with ``nproc`` local processes."""
    argv = [a for a in sys.argv[1:]]
    cleaned, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "--nproc":
            skip = True
            continue
        if a.startswith("--nproc="):
            continue
        cleaned.append(a)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "logicforge", *cleaned]
    return subprocess.call(cmd)
