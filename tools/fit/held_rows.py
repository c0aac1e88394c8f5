"""Markdown rows of a held-register sweep (tools/fit/sweep.py with an ``estimate`` block): one row per run with its
validation accuracy, the whole-top serial-head estimate at the sweep's pipelining, gates and live input bits after the
passes, the depth after the passes and the training seconds; sorted by setting, then seed. The changes column is
read from the sweep files (``common`` without the validation and hardware keys, then the run's overrides).

Usage: python tools/fit/held_rows.py RESULTS.jsonl SWEEP.yaml...
"""
import json
import sys
from pathlib import Path

import yaml

rows, changes = [], {}
for arg in sys.argv[1:]:
    if arg.endswith(".jsonl"):
        rows += [json.loads(line) for line in open(arg)]
        continue
    spec = yaml.safe_load(Path(arg).read_text())
    common = {k: v for k, v in (spec.get("common") or {}).items() if k != "val_fraction" and not k.startswith("hardware.")}
    for name, over in spec["runs"].items():
        for seed in spec.get("seeds", [0]):
            changes[f"{name}_s{seed}"] = dict(common, **(over or {}))
print("| run | changes from the base config | validation % (final / best epoch) | estimate LCs (encoder / gates / head / top) "
      "| gates after passes | live input bits | depth | training s |")
print("|---|---|---|---|---|---|---|---|")
for r in sorted(rows, key=lambda r: (r["name"], r["seed"])):
    over = ", ".join(f"{k} {v}" for k, v in changes.get(r["run"], r["overrides"] or {}).items()) or "(none)"
    p = r["est2_parts"]
    print(f"| {r['run']} | {over} | {100 * r['val']:.2f} / {100 * r['val_best']:.2f} @{r['val_best_epoch']} | "
          f"{r['est2_lcs']} ({p['encoder']} / {p['gates']} / {p['head']} / {p['top']}) | {r['gates_after']} | "
          f"{r['live_inputs']} | {r['depth']} | {r['seconds']:.0f} |")
