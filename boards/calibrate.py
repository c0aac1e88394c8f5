"""Record yosys/nextpnr logic-cell counts of designs, to calibrate and check the cost model.

Usage::

    python -m logicforge.boards.calibrate --out tests/data/estimate_calibration.json [--netlist F ...]

Without ``--netlist`` it builds the random designs of ``DESIGNS`` (regenerated from their
parameters by tests/test_estimate.py, so the recording stays small). Per design: the iCEBreaker
top at ``--clock-mhz`` (default 100), yosys ``synth_ice40`` flattened, then ``nextpnr-ice40
--pack-only`` (logic cells are fixed once packed; placement only adds time), plus the
hierarchy-keeping yosys run of ``synth`` for the split into encoder, gates, head and top.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

#: name -> random_netlist parameters (seeded): sizes and shapes that differ in every part.
DESIGNS = {
    "r1_f64w5_2x1000_k10g100": dict(seed=1, features=64, feature_width=5, thresholds_per_feature=4,
                                    layer_widths=(1000, 1000), classes=10, group_size=100),
    "r2_f64w5_500_k10g40": dict(seed=2, features=64, feature_width=5, thresholds_per_feature=4,
                                layer_widths=(500,), classes=10, group_size=40),
    "r3_f100w8_800x600_k10g20": dict(seed=3, features=100, feature_width=8, thresholds_per_feature=3,
                                     layer_widths=(800, 600), classes=10, group_size=20),
    "r4_f30w8_300_k4g50": dict(seed=4, features=30, feature_width=8, thresholds_per_feature=2,
                               layer_widths=(300,), classes=4, group_size=50),
    "r5_f200w8_1500_k10g30": dict(seed=5, features=200, feature_width=8, thresholds_per_feature=2,
                                  layer_widths=(1500,), classes=10, group_size=30),
    "r6_f16w10_400x300_k6g25": dict(seed=6, features=16, feature_width=10, thresholds_per_feature=4,
                                    layer_widths=(400, 300), classes=6, group_size=25),
}


def design_netlist(params: dict):
    import numpy as np

    from logicforge.netlist import generate

    p = dict(params)
    rng = np.random.default_rng(p.pop("seed"))
    return generate.random_netlist(rng, **p)


def measure(net, outdir: Path, *, clock_mhz: float, head: str = "tree", layers_per_stage=None,
            encoder=None) -> dict:
    from logicforge.boards import flow
    from logicforge.boards.registry import get_board
    from logicforge.fileio import write_json, write_text

    board = get_board("icebreaker")
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / flow.WORK).mkdir(exist_ok=True)
    files, info = board.generate_top(net, clock_mhz=clock_mhz, head=head, layers_per_stage=layers_per_stage,
                                     encoder=encoder)
    for name, text in files.items():
        write_text(outdir / name, text)
    write_json(outdir / "top_info.json", info)
    stats, ys = flow.yosys_synth([board.top_file], board.top_module, outdir)
    work = outdir / flow.WORK
    args = [*board.nextpnr_args, "--json", f"{flow.WORK}/top_synth.json", "--pcf", board.constraints_file,
            "--pack-only", "--report", f"{flow.WORK}/pack_report.json", "--log", f"{flow.WORK}/pack.log", "--quiet"]
    flow.run_tool("nextpnr-ice40", args, cwd=outdir, log=work / "pack.out")
    lcs = flow.parse_nextpnr_report(work / "pack_report.json")["lcs"]
    parts, _ = flow._yosys_split(board.top_file, board.top_module, outdir)
    return {"head": head, "layers_per_stage": info["layers_per_stage"], "encoder": info["encoder"], "lcs": lcs, "luts": stats["luts"], "ffs": stats["ffs"], "carries": stats["carries"],
            "brams": stats["brams"], "parts": parts, "lc_split": flow.lc_split(parts, lcs)}


def fit(path: Path) -> int:
    """Least-squares scale from structural cells to nextpnr logic cells; print the error table."""
    from logicforge.boards.estimate import COEF, estimate
    from logicforge.netlist import format as nf

    rec = json.loads(path.read_text())
    rows = []
    for name, r in rec["designs"].items():
        p = r["params"]
        net = nf.load(p["netlist"]) if "netlist" in p else design_netlist(p)
        est = estimate(net, board="icebreaker", clock_mhz=rec["clock_mhz"], head=r.get("head", "tree"),
                       layers_per_stage=r.get("layers_per_stage", 3), encoder=r.get("encoder"))
        struct = sum(d["lcs_structural"] for d in est["parts"].values())
        rows.append((name, struct, r["lcs"], est, r))
    scale = sum(s * y for _, s, y, _, _ in rows) / sum(s * s for _, s, _, _, _ in rows)
    print(f"lc_scale = {scale:.4f} (now {COEF['lc_scale']})")
    for key, rk in (("luts", "luts"), ("ffs", "ffs")):
        xs = [sum(d[f"{key}_structural"] for d in est["parts"].values()) for _, _, _, est, _ in rows]
        ys = [r[rk] for _, _, _, _, r in rows]
        k = sum(x * y for x, y in zip(xs, ys)) / sum(x * x for x in xs)
        print(f"{key[:-1]}_scale = {k:.4f} (now {COEF[key[:-1] + '_scale']})")
    print("| design | nextpnr LCs | estimate | error | yosys LUT4 / est | yosys FF / est |")
    print("|---|---|---|---|---|---|")
    for name, struct, y, est, r in rows:
        pred = round(struct * scale)
        print(f"| {name} | {y} | {pred} | {100 * (pred - y) / y:+.1f} % | {r['luts']} / {est['luts']} | "
              f"{r['ffs']} / {est['ffs']} |")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="build/calibration.json")
    p.add_argument("--netlist", nargs="*", default=[])
    p.add_argument("--only", nargs="*", default=None, help="names of DESIGNS to run")
    p.add_argument("--clock-mhz", type=float, default=100.0)
    p.add_argument("--work", default="build/calibrate")
    p.add_argument("--head", choices=("tree", "serial"), default="tree",
                   help="the top's head; serial records are named <design>_serial (records without a "
                        "head are tree)")
    from logicforge.boards.top import ENCODERS

    p.add_argument("--encoder", choices=ENCODERS, default="stream",
                   help="the top's threshold encoder; shift records are named <design>[_serial]_shift "
                        "(records without an encoder are stream)")
    p.add_argument("--fit", action="store_true", help="fit COEF['lc_scale'] to the recording in --out and "
                   "print each design's error; no synthesis")
    args = p.parse_args(argv)
    if args.fit:
        return fit(Path(args.out))
    from logicforge.boards.estimate import estimate
    from logicforge.fileio import write_json
    from logicforge.netlist import format as nf

    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {"clock_mhz": args.clock_mhz, "designs": {}}
    todo = [(n, design_netlist(d), d) for n, d in DESIGNS.items() if args.only is None or n in args.only]
    todo += [(Path(f).parent.name if Path(f).name == "netlist.json" else Path(f).stem, nf.load(f), {"netlist": f})
             for f in args.netlist]
    for name, net, params in todo:
        t0 = time.time()
        if args.head != "tree":
            name = f"{name}_{args.head}"
        if args.encoder != "stream":
            name = f"{name}_{args.encoder}"
        r = measure(net, Path(args.work) / name, clock_mhz=args.clock_mhz, head=args.head, encoder=args.encoder)
        est = estimate(net, board="icebreaker", clock_mhz=args.clock_mhz, head=args.head, encoder=args.encoder)
        r.update(params=params, seconds=round(time.time() - t0, 1),
                 estimate={"lcs": est["lcs"], "luts": est["luts"], "ffs": est["ffs"],
                           "parts": {k: v["lcs"] for k, v in est["parts"].items()}})
        results["designs"][name] = r
        write_json(out, results)
        print(json.dumps({"design": name, "lcs": r["lcs"], "estimate": est["lcs"], "split": r["lc_split"],
                          "est_split": r["estimate"]["parts"]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
