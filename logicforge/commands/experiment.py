"""``logicforge experiment``: compare the training estimators (softmax, gumbel, hard_st, cage) over seeds
and Gumbel temperatures; write results.json, report.md and plots (docs/training.md, "Experiments")."""

from __future__ import annotations

import argparse


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", default="experiments/digits.yaml",
                   help="experiment file (default experiments/digits.yaml)")
    p.add_argument("--out", metavar="DIR", help="output directory (default experiments/<name>/)")
    p.add_argument("--report-only", action="store_true",
                   help="train nothing; rebuild results.json, report.md and plots from the finished runs")
    p.add_argument("--quiet", action="store_true", help="no progress lines")


def run(args) -> int:
    import shlex
    from pathlib import Path

    from logicforge.train import experiment

    spec = experiment.load(args.config)
    out = Path(args.out) if args.out else Path(args.config).resolve().parent / spec["name"]
    log = (lambda *a: None) if args.quiet else (lambda msg: print(msg, flush=True))
    command = f"logicforge experiment --config {shlex.quote(str(args.config))}" + (
        f" --out {shlex.quote(str(args.out))}" if args.out else "")
    res = experiment.run(spec, out, log, command=command, report_only=args.report_only)
    print(f"{out / 'report.md'}: {len(res['runs'])} runs")
    for c in res["claims"]:
        print(f"  {c['verdict']:>10}  {c['claim']}")
    return 0
