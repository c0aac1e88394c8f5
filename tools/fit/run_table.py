"""Markdown rows (settings, accuracy per epoch, gates after passes, live inputs, measured LCs) for run directories.

Usage: python tools/fit/run_table.py RUN_DIR... (reads build/hw/<run>/measure.log when present)
"""
import json, sys, yaml
from pathlib import Path
from logicforge.netlist.format import load
from logicforge.netlist import passes
rows = []
for d in map(Path, sys.argv[1:]):
    cfg = yaml.safe_load((d / "config.yaml").read_text())
    ms = [json.loads(l) for l in open(d / "metrics.jsonl")]
    shape = cfg["widths"] or [cfg["width"]] * (cfg["layers"] - 1)
    G = cfg["group_size"] or shape[-1] // 10
    init = cfg["init"] + (f" {cfg['residual_logit']:g}" if cfg["init"] == "residual" else "")
    enc = f"{cfg['encoding']['method'][0]}{cfg['encoding']['thresholds']}"
    lr = f"{cfg['lr']:g}" + (f"→{cfg['lr_end']:g}" if cfg.get("lr_end") else "")
    cost = ""
    if (d / "netlist.json").exists():
        net = load(d / "netlist.json"); g, _ = passes.optimize(net)
        cost = f"{net.num_gates} → {g.num_gates} | {g.num_inputs}"
    else:
        cost = "– | –"
    hw = Path("build/hw") / d.name / "measure.log"
    lc = ""
    if hw.exists() and hw.read_text().strip():
        m = json.loads(hw.read_text().strip().splitlines()[-1]); lc = f"{m['pnr']['lc_used']}"
    acc = " ".join(f"{m['test_acc_discrete']*100:.2f}" for m in ms) if len(ms) <= 4 else f"{ms[-1]['test_acc_discrete']*100:.2f} (best {max(m['test_acc_discrete'] for m in ms)*100:.2f})"
    print(f"| {d.name} | {cfg['mode']}, {init} | {'/'.join(map(str, shape))}, G={G}, τ={cfg['tau']:g} | {enc} | {cfg.get('connections')} | {lr} | {len(ms)} | {acc} | {cost} | {lc} |")
