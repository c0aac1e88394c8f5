"""Markdown Pareto rows: accuracy against measured logic cells, one row per run directory.

Usage: python tools/fit/pareto_rows.py RUN_DIR...  (needs build/hw/<run>/measure.log from measure_run.sh)
"""
import json
import sys
from pathlib import Path

import yaml

from logicforge.netlist import passes
from logicforge.netlist.format import load

for d in map(Path, sys.argv[1:]):
    cfg = yaml.safe_load((d / "config.yaml").read_text())
    ms = [json.loads(line) for line in open(d / "metrics.jsonl")]
    net = load(d / "netlist.json")
    g, _ = passes.optimize(net)
    m = json.loads((Path("build/hw") / d.name / "measure.log").read_text().strip().splitlines()[-1])
    shape = "/".join(map(str, cfg["widths"] or [cfg["width"]] * (cfg["layers"] - 1)))
    enc = f"{cfg['encoding']['method'][0]}{cfg['encoding']['thresholds']}"
    print(f"| {m['pnr']['lc_used']} | {ms[-1]['test_acc_discrete'] * 100:.2f} | {d.name} | {shape}, G={net.group_size} | "
          f"{enc} | {len(ms)} | {net.num_gates} → {g.num_gates} | {g.num_inputs} | {net.classes * net.group_size} | "
          f"{m['core']['lut4']} | {m['core']['ff']} | {m['core']['carry']} |")
