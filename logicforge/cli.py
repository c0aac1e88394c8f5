"""The ``logicforge`` command. Every Makefile target is one call of a subcommand here.

Each subcommand lives in its stage's ``commands`` module, which defines ``configure(parser)`` and
``run(args) -> int`` and imports heavy libraries (torch, amaranth) only inside ``run``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from logicforge.errors import LogicforgeError

#: name -> (module, one-line help)
COMMANDS = {
    "train": ("logicforge.commands.train", "train a logic gate network and export its netlist"),
    "predict": ("logicforge.netlist.commands", "classify an (n, F) integer .npy array with a netlist"),
    "passes": ("logicforge.netlist.passes_cli", "run the netlist optimisation passes and report gate counts"),
    "verilog": ("logicforge.hdl.commands", "generate the pipelined core and board top as Verilog"),
    "sim": ("logicforge.sim.commands", "check bit-exact parity of the core in Verilator via cocotb"),
    "estimate": ("logicforge.commands.estimate", "predict LUT4, FF and logic cells of a design without synthesis"),
    "synth": ("logicforge.boards.commands_synth", "synthesise and place-and-route with yosys/nextpnr"),
    "bitstream": ("logicforge.boards.commands_bitstream", "build the board bitstream (.bin)"),
    "program": ("logicforge.boards.commands_program", "program the board with iceprog"),
    "demo": ("logicforge.demo", "train, generate, simulate and synthesise the default model"),
    "bench": ("logicforge.train.bench", "benchmark training-step speed and discrete evaluation"),
}


def build_parser(selected: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; only the ``selected`` subcommand's module is imported and configured."""
    parser = argparse.ArgumentParser(
        prog="logicforge",
        description="Train logic gate networks and compile them to bit-exact FPGA gateware.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        if name == selected:
            importlib.import_module(module).configure(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    selected = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(selected if selected in COMMANDS else None)
    args = parser.parse_args(argv)
    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except LogicforgeError as e:
        print(f"logicforge {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"logicforge {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
