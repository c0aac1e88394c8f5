"""Markdown rows of sweep results (tools/fit/sweep.py), one per run, sorted by ``approx_lcs`` (the whole-top
estimate with the serial head: estimate - head + 200). ``--no-test`` leaves the test column out (for choosing).

Usage: python tools/fit/serial_rows.py [--no-test] RESULTS.jsonl...
"""
import json
import sys

args = [a for a in sys.argv[1:] if a != "--no-test"]
show_test = "--no-test" not in sys.argv[1:]
rows = []
for path in args:
    for line in open(path):
        r = json.loads(line)
        if "approx_lcs" not in r:
            continue
        over = ", ".join(f"{k} {v}" for k, v in (r["overrides"] or {}).items()) or "(base)"
        p = r["parts"]
        test = f" {100 * r['test']:.2f} |" if show_test else ""
        rows.append((r["approx_lcs"], f"| {r['approx_lcs']} | {100 * r['val']:.2f} |{test} {r['run']} | {over} | "
                     f"{r['gates_after']} | {r['live_inputs']} | {p['encoder']} / {p['gates']} / {p['head']} / "
                     f"{p['top']} | {r['est_lcs']} | {r['seconds']:.0f} |"))
for _, row in sorted(rows):
    print(row)
