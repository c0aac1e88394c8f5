"""A hyper-parameter sweep selected on the validation split, with the whole-top cost of every run.

Usage: python tools/fit/sweep.py SWEEP.yaml OUT.jsonl

SWEEP.yaml: ``base`` (a config file), ``common`` (overrides for every run, e.g. ``val_fraction: 0.2``),
``seeds`` (list), ``runs`` (a mapping name -> overrides, flat dotted keys). Each run trains in
runs/<sweep>/<name>_s<seed>/ (skipped when its summary exists) and appends one JSON line: the
validation accuracy (final and best epoch), the test accuracy (recorded, never used to choose),
gates and live input bits after the passes, and ``logicforge estimate``'s whole-top logic cells on
the iCEBreaker at 100 MHz, and ``approx_lcs``: that estimate with the serial classifier head (branch shead)
in place of the parallel one, ``est_lcs - parts.head + SERIAL_HEAD_LCS``, an approximation until the
serial head's cost model lands.

Optional in SWEEP.yaml: ``estimate`` (keyword arguments of ``boards.estimate.estimate``, e.g.
``{layers_per_stage: 2, head: serial, clock_mhz: 100.5}``): each row then also records that estimate
(``est2_lcs``, its parts) and the depth after the passes; ``record_test: false`` leaves the test accuracy
out of the rows (a sweep that chooses on validation and reads the test set only for its final run).
"""
import json
import sys
from pathlib import Path

import yaml

from logicforge.boards.estimate import estimate
from logicforge.netlist import passes
from logicforge.netlist.format import load
from logicforge.train import config
from logicforge.train.trainer import train

SERIAL_HEAD_LCS = 200  # the serial head's 10 counters and control (shead branch's figure, ~150-200 LCs)


def approx_serial_head_lcs(est: dict) -> int:
    """The whole-top estimate with the parallel popcount head replaced by the serial one (approximation)."""
    return est["lcs"] - est["parts"]["head"]["lcs"] + SERIAL_HEAD_LCS


spec = yaml.safe_load(Path(sys.argv[1]).read_text())
out = Path(sys.argv[2])
root = Path("runs") / Path(sys.argv[1]).stem
for name, over in spec["runs"].items():
    for seed in spec.get("seeds", [0]):
        run = f"{name}_s{seed}"
        d = root / run
        if not (d / "summary.json").exists():
            flat = dict(spec.get("common") or {}, **(over or {}), seed=seed, name=run)
            cfg = config.load(spec["base"], flat)
            train(cfg, d, progress=False)
        s = json.loads((d / "summary.json").read_text())
        hist = [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()]
        net = load(d / "netlist.json")
        g, _ = passes.optimize(net)
        est = estimate(net, board="icebreaker", clock_mhz=100, graph=g)
        est2 = estimate(net, board="icebreaker", graph=g, **spec["estimate"]) if spec.get("estimate") else None
        vals = [h.get("val_acc_discrete") for h in hist]
        best = max(range(len(vals)), key=lambda i: (vals[i] or 0))
        row = {"run": run, "name": name, "seed": seed, "overrides": over,
               "val": vals[-1], "val_best": vals[best], "val_best_epoch": best + 1,
               "test": s["test_acc_discrete"] if spec.get("record_test", True) else None, "gates_after": g.num_gates, "live_inputs": g.num_inputs,
               "est_lcs": est["lcs"], "approx_lcs": approx_serial_head_lcs(est), "parts": {k: v["lcs"] for k, v in est["parts"].items()},
               "seconds": s["train_seconds"]}
        if est2:
            row.update(est2_lcs=est2["lcs"], est2_parts={k: v["lcs"] for k, v in est2["parts"].items()},
                       depth=est2["parts"]["gates"]["depth"], stages=est2["parts"]["gates"]["stages"])
        with open(out, "a") as fh:
            fh.write(json.dumps(row) + "\n")
        print(f"{run:28s} val {row['val']:.4f} (best {row['val_best']:.4f} @{row['val_best_epoch']})  "
              f"gates {g.num_gates:5d}  inputs {g.num_inputs:5d}  est {est['lcs']:5d} LCs  "
              f"approx {row['approx_lcs']:5d}  {s['train_seconds']:.0f}s"
              + (f"  est2 {row['est2_lcs']} depth {row['depth']}" if est2 else ""), flush=True)
