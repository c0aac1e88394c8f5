"""Measure LUTs, flip-flops and Fmax of ``logicnet_core`` on iCE40UP5K for several pipeline depths.

The core has far more IOs than the UP5K SG48's 39 pins, so for place and route it is wrapped in
``measure_top``: ``in_data`` comes from a serial-in shift register, ``out_scores`` is XOR-reduced
(pipelined) into one registered pin (every score bit stays live), ``out_valid`` and ``out_class`` go to pins.

Per configuration this reports:
  * the core alone after ``synth_ice40`` (out of context): SB_LUT4, flip-flops, SB_CARRY;
  * the wrapped design after ``nextpnr-ice40`` for the iCEBreaker's device: logic cells used and
    the achieved Fmax of ``clk`` (timing-driven towards ``freq``).

The tools, their lookup and the parsing of their reports are ``boards.flow``'s. The command is
``logicforge measure`` (a developer command; ``logicforge measure --help``); without ``--netlist``
it uses a random 3 x 1000-gate netlist, 64 features of width 5, 10 classes.
"""

from __future__ import annotations

import time
from pathlib import Path

#: The board whose device (nextpnr arguments) the wrapped core is placed on.
BOARD = "icebreaker"


def default_netlist(seed: int = 0):
    import numpy as np

    from logicforge.netlist import generate

    rng = np.random.default_rng(seed)
    return generate.random_netlist(rng, features=64, feature_width=5, thresholds_per_feature=4,
                                   layer_widths=(1000, 1000), classes=10, group_size=100)


def wrapper_verilog(info: dict) -> str:
    """Verilog of ``measure_top`` around an instance of ``logicnet_core`` with ports from ``info``."""
    from amaranth.hdl import Cat, ClockSignal, Elaboratable, Instance, Module, ResetSignal, Signal

    from logicforge.hdl.verilog import to_verilog

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
    return to_verilog(top, name="measure_top", ports=[top.sin, top.vin, top.valid, top.cls, top.sxor])


def _cells(stats: dict) -> dict:
    return {"lut4": stats["luts"], "ff": stats["ffs"], "carry": stats["carries"]}


def measure(net, lps: int, out: Path, *, plps: int | None = None, freq: float = 100.0, seed: int = 1,
            core_only: bool = True, pnr: bool = True, pack_only: bool = False) -> dict:
    """Generate, synthesise and (unless ``pnr=False``) place one configuration under
    ``out/lps<lps>_plps<plps>/``; return its row (see the module docstring)."""
    from logicforge.boards import flow
    from logicforge.boards.registry import get_board
    from logicforge.fileio import write_text
    from logicforge.hdl.verilog import core_verilog

    work = Path(out) / f"lps{lps}_plps{plps}"
    t0 = time.time()
    text, info = core_verilog(net, layers_per_stage=lps, popcount_levels_per_stage=plps)
    for sub in ("core", "top"):
        write_text(work / sub / "core.v", text)
    write_text(work / "top" / "top.v", wrapper_verilog(info))
    res = {"layers_per_stage": lps, "popcount_levels_per_stage": info["popcount_levels_per_stage"],
           "latency_cycles": info["latency_cycles"],
           "gates_after": info["gates_after"], "gates_before": info["gates_before"],
           "comparators": info["comparators"], "depth": info["depth"], "verilog_s": round(time.time() - t0, 1)}
    if core_only:
        stats, seconds = flow.yosys_synth(["core.v"], "logicnet_core", work / "core")
        res["core"] = _cells(stats)
        res["core_synth_s"] = round(seconds, 1)
    if not pnr:
        return res
    top = work / "top"
    stats, seconds = flow.yosys_synth(["core.v", "top.v"], "measure_top", top)
    res["top"] = _cells(stats)
    res["top_synth_s"] = round(seconds, 1)
    report = f"{flow.WORK}/nextpnr_report.json"
    args = [*get_board(BOARD).nextpnr_args, "--json", f"{flow.WORK}/top_synth.json", "--pcf-allow-unconstrained",
            "--timing-allow-fail", "--freq", f"{freq:g}", "--seed", str(seed), "--report", report,
            "--quiet", "--log", f"{flow.WORK}/nextpnr.log", *(["--pack-only"] if pack_only else [])]
    seconds = flow.run_tool("nextpnr-ice40", args, cwd=top, log=top / flow.WORK / "nextpnr.out")
    rep = flow.parse_nextpnr_report(top / report)
    res["pnr"] = {"lc_used": rep["lcs"], "lc_available": rep["lcs_available"],
                  "fmax_mhz": round(rep["fmax_mhz"] or 0.0, 2), "seed": seed, "target_mhz": freq}
    res["pnr_s"] = round(seconds, 1)
    return res
