"""The board registry: ``get_board(name)`` for every ``--board`` / ``BOARD=`` value.

A board knows how to wrap the core into a top level for its FPGA (``write_top``) and what
place-and-route needs to know about its device. ``generic`` is the core alone, with no top.
This module imports nothing heavy; board modules import Amaranth only inside their methods.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from logicforge.errors import LogicforgeError

#: name -> "module:ClassName". The order is the order shown to users.
BOARDS = {
    "generic": "logicforge.boards.registry:GenericBoard",
    "icebreaker": "logicforge.boards.icebreaker:ICEBreaker",
    "ulx3s-85f": "logicforge.boards.ulx3s:ULX3S85F",
}


#: How nextpnr places (``--placement``): ``timing`` (its timing-driven placement), ``wirelength``
#: (``--no-tmdriv``: wirelength alone, for designs whose routing is congested) or ``auto`` (the
#: board's ``wirelength_fill`` decides from yosys's LUT count; ``boards.flow.choose_placement``).
PLACEMENTS = ("auto", "timing", "wirelength")


class Board:
    """What every board provides. Subclasses set the class attributes and override ``write_top``."""

    name: str = ""
    #: Whether the board has a top level, constraints and a bitstream (False: the core alone).
    has_top: bool = False
    #: The FPGA family (a key of ``boards.family.FAMILIES``): yosys, nextpnr and packer commands.
    #: ``generic`` reports the core's cost on iCE40.
    family: str = "ice40"
    #: nextpnr device arguments (``nextpnr-<family>``), for boards with a top.
    nextpnr_args: tuple[str, ...] = ()
    #: The FPGA part (None for ``generic``).
    device: str | None = None
    #: Logic cells of the device (None for ``generic``): iCE40 ICESTORM_LCs, ECP5 LUT4 sites.
    lcs_available: int | None = None
    #: With ``placement="auto"``, a design whose LUT4 sites (yosys's count, before nextpnr) fill more
    #: than this fraction of ``lcs_available`` is placed for wirelength alone (nextpnr ``--no-tmdriv``);
    #: None: always timing-driven (``boards.flow.choose_placement``).
    wirelength_fill: float | None = None
    top_module: str = "top"
    top_file: str = "top.v"
    constraints_file: str | None = None

    @property
    def bitstream_file(self) -> str:
        """The bitstream's file name (``top.bin`` for iCE40, ``top.bit`` for ECP5)."""
        from logicforge.boards.family import FAMILIES

        return FAMILIES[self.family].bitstream_file

    def write_top(self, netlist, outdir, core_info=None, *, clock_mhz=None, baud=None, head=None,
                  encoder=None) -> list[Path]:
        """Write the board's top level and constraints into ``outdir``; return the paths written.

        ``core_info`` is the info dict of ``logicforge.hdl.verilog.core_verilog`` (its
        ``layers_per_stage`` is honoured so the top embeds the same core as ``core.v``).
        """
        return []

    def __repr__(self) -> str:
        return f"<board {self.name}>"


class GenericBoard(Board):
    """No board: ``verilog`` writes the core only; ``synth`` reports the core's iCE40 cost with
    yosys alone (no place-and-route: the core's ports outnumber any iCE40 package's pins)."""

    name = "generic"


def board_names() -> list[str]:
    return list(BOARDS)


def get_board(name: str) -> Board:
    """The board called ``name``; LogicforgeError naming the known boards for any other name."""
    spec = BOARDS.get(str(name).strip().lower()) if name is not None else None
    if spec is None:
        raise LogicforgeError(f"unknown board {name!r}; known boards: {', '.join(BOARDS)}")
    module, cls = spec.split(":")
    return getattr(importlib.import_module(module), cls)()
