# amaranth: UnusedElaboratable=no
"""Verilog text of ``logicnet_core``."""

from __future__ import annotations

from logicforge.netlist.format import Netlist

MODULE = "logicnet_core"


def core_verilog(netlist: Netlist, *, layers_per_stage: int | None = None, optimize: bool = True,
                 popcount_levels_per_stage: int | None = None, head: str | None = None) -> tuple[str, dict]:
    """Return (Verilog text of module ``logicnet_core``, info dict from ``LogicNetCore.info``).

    ``head``: ``tree`` (default) or ``serial`` (``LogicNetCore``). The info dict has ``latency_cycles``, ``head``,
    ``sample_interval_cycles``, ``score_width``, ``layers_per_stage``, ``in_width``,
    ``gates_before``, ``gates_after``, ``passes``, ``comparators`` and the port widths.
    """
    from amaranth.back import verilog

    from logicforge.hdl.core import LogicNetCore

    core = LogicNetCore(netlist, layers_per_stage=layers_per_stage, optimize=optimize,
                        popcount_levels_per_stage=popcount_levels_per_stage, head=head)
    text = verilog.convert(core, name=MODULE, emit_src=False, strip_internal_attrs=True)
    return text, core.info()
