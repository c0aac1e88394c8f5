"""``logicforge program``: write the bitstream to the board's SPI flash.

The programmer depends on the board's FPGA family: ``iceprog`` for the iCEBreaker (iCE40),
``openFPGALoader -b ulx3s -f`` for the ULX3S (ECP5). Both talk to the board's FTDI chip over USB,
so no WebAssembly build of them exists: they must be installed natively (Debian/Ubuntu packages
``fpga-icestorm`` and ``openfpgaloader``) or named by ``$ICEPROG`` / ``$OPENFPGALOADER``.
"""

from __future__ import annotations

import os
import shutil

from logicforge.commands import options
from logicforge.errors import LogicforgeError

#: family -> (executable, environment variable that overrides it, Debian/Ubuntu package,
#: arguments before the bitstream's path)
PROGRAMMERS = {
    "ice40": ("iceprog", "ICEPROG", "fpga-icestorm", ()),
    "ecp5": ("openFPGALoader", "OPENFPGALOADER", "openfpgaloader", ("-b", "ulx3s", "-f")),
}


def find_programmer(family: str = "ice40") -> tuple[str, tuple[str, ...]]:
    """(executable, arguments before the bitstream) for ``family``; LogicforgeError with how to get it."""
    tool, env, package, args = PROGRAMMERS[family]
    exe = os.environ.get(env) or tool
    found = shutil.which(exe)
    if not found:
        if exe != tool:
            raise LogicforgeError(f"{env}={exe}: no such executable")
        raise LogicforgeError(f"{tool} not found: install it (Debian/Ubuntu: sudo apt install {package}) "
                              f"or set {env}=/path/to/{tool}")
    return found, args


def configure(p) -> None:
    options.add_board_build(p)


def run(args) -> int:
    import subprocess

    from logicforge.boards import flow

    board, net, outdir = options.load_board_build(args)
    if not board.has_top:
        raise LogicforgeError(f"board {board.name} cannot be programmed; use a board with a top "
                              f"(icebreaker, ulx3s-85f)")
    exe, pre = find_programmer(board.family)  # before the (slow) bitstream build
    binfile = flow.bitstream(net, board.name, outdir, layers_per_stage=args.layers_per_stage,
                             popcount_levels_per_stage=args.popcount_levels_per_stage, head=args.head,
                             clock_mhz=args.clock_mhz, baud=args.baud, placement=args.placement,
                             encoder=args.encoder)
    print(f"program: {' '.join([exe, *pre, str(binfile)])}")
    rc = subprocess.run([exe, *pre, str(binfile)]).returncode
    if rc != 0:
        raise LogicforgeError(f"{os.path.basename(exe)} failed (exit {rc}): is the {board.name} plugged in "
                              f"and accessible to this user (udev rules)?")
    return 0
