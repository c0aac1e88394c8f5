# amaranth: UnusedElaboratable=no
"""Verilog text of ``logicnet_core``."""

from __future__ import annotations

from logicforge.netlist.format import Netlist

MODULE = "logicnet_core"

#: The longest line :func:`wrap_long_lines` leaves: Verilator's preprocessor refuses a line of more than
#: 40,000 tokens, and Amaranth writes a wide concatenation (a 12,000-gate level) on one line.
MAX_LINE = 4000


def wrap_long_lines(text: str, limit: int = MAX_LINE) -> str:
    """``text`` with every line longer than ``limit`` broken after the ``", "`` separators outside
    string literals (a concatenation's items), so that no piece is longer than ``limit`` where a
    separator allows. Verilog ignores the line breaks: the design is unchanged."""
    out = []
    for line in text.split("\n"):
        if len(line) <= limit:
            out.append(line)
            continue
        pieces, start, in_string, i = [], 0, False, 0
        last_cut = None  # the index after the latest separator outside a string in this piece
        while i < len(line):
            ch = line[i]
            if ch == '"' and (i == 0 or line[i - 1] != "\\"):
                in_string = not in_string
            elif not in_string and line.startswith(", ", i):
                last_cut = i + 2
                i += 1
            if i - start >= limit and last_cut is not None:
                pieces.append(line[start:last_cut].rstrip())
                start, last_cut = last_cut, None
            i += 1
        pieces.append(line[start:])
        out.append("\n    ".join(pieces))
    return "\n".join(out)


def to_verilog(elaboratable, *, name: str, **kwargs) -> str:
    """Verilog text of an Amaranth design for our tools: ``amaranth.back.verilog.convert`` without
    source attributes or Amaranth's internal ones, lines broken by :func:`wrap_long_lines`."""
    from amaranth.back import verilog

    return wrap_long_lines(verilog.convert(elaboratable, name=name, emit_src=False, strip_internal_attrs=True,
                                           **kwargs))


def core_verilog(netlist: Netlist, *, layers_per_stage: int | None = None, optimize: bool = True,
                 popcount_levels_per_stage: int | None = None, head: str | None = None) -> tuple[str, dict]:
    """Return (Verilog text of module ``logicnet_core``, info dict from ``LogicNetCore.info``).

    ``head``: ``tree`` (default) or ``serial`` (``LogicNetCore``). The info dict has ``latency_cycles``, ``head``,
    ``sample_interval_cycles``, ``score_width``, ``layers_per_stage``, ``in_width``,
    ``gates_before``, ``gates_after``, ``passes``, ``comparators`` and the port widths.
    """
    from logicforge.hdl.core import LogicNetCore

    core = LogicNetCore(netlist, layers_per_stage=layers_per_stage, optimize=optimize,
                        popcount_levels_per_stage=popcount_levels_per_stage, head=head)
    return to_verilog(core, name=MODULE), core.info()
