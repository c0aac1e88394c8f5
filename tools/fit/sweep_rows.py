"""Markdown rows of sweep results (tools/fit/sweep.py): per setting, the mean over its seeds of the whole-top
logic-cell estimate, validation and test accuracy, live gates and input bits; sorted by the estimate.

Usage: python tools/fit/sweep_rows.py RESULTS.jsonl...
"""
import collections
import json
import sys

by = collections.defaultdict(list)
for path in sys.argv[1:]:
    for line in open(path):
        r = json.loads(line)
        by[r["name"]].append(r)
rows = []
for name, rs in by.items():
    mean = lambda k: sum(r[k] for r in rs) / len(rs)  # noqa: E731
    tests = " / ".join(f"{100 * r['test']:.2f}" for r in sorted(rs, key=lambda r: r["seed"]))
    over = ", ".join(f"{k} {v}" for k, v in (rs[0]["overrides"] or {}).items()) or "(common only)"
    rows.append((mean("est_lcs"), f"| {mean('est_lcs'):.0f} | {100 * mean('val'):.2f} | {tests} | {name} | {over} | "
                 f"{mean('gates_after'):.0f} | {mean('live_inputs'):.0f} | {len(rs)} |"))
for _, row in sorted(rows):
    print(row)
