"""``logicforge program``: write the bitstream to the board's SPI flash with iceprog.

iceprog talks to the board's FTDI chip over USB, so no WebAssembly build of it exists: it must be
installed natively (Debian/Ubuntu package ``fpga-icestorm``) or named by ``$ICEPROG``.
"""

from __future__ import annotations

import os
import shutil

from logicforge.commands import options
from logicforge.errors import LogicforgeError

INSTALL_HINT = ("iceprog not found: install it (Debian/Ubuntu: sudo apt install fpga-icestorm) "
                "or set ICEPROG=/path/to/iceprog")


def find_iceprog() -> str:
    """The iceprog executable ($ICEPROG, else PATH); LogicforgeError with how to get it."""
    exe = os.environ.get("ICEPROG") or "iceprog"
    found = shutil.which(exe)
    if not found:
        raise LogicforgeError(INSTALL_HINT if exe == "iceprog" else f"ICEPROG={exe}: no such executable")
    return found


def configure(p) -> None:
    options.add_board_build(p)


def run(args) -> int:
    import subprocess

    from logicforge.boards import flow

    board, net, outdir = options.load_board_build(args)
    if not board.has_top:
        raise LogicforgeError(f"board {board.name} cannot be programmed; use --board icebreaker")
    iceprog = find_iceprog()  # before the (slow) bitstream build
    binfile = flow.bitstream(net, board.name, outdir, layers_per_stage=args.layers_per_stage,
                             clock_mhz=args.clock_mhz, baud=args.baud)
    print(f"program: {iceprog} {binfile}")
    rc = subprocess.run([iceprog, str(binfile)]).returncode
    if rc != 0:
        raise LogicforgeError(f"iceprog failed (exit {rc}): is the {board.name} plugged in and "
                              f"accessible to this user (udev rules)?")
    return 0
