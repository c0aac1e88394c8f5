"""The ``logicforge`` command. Every Makefile target is one call of a subcommand here.

Each subcommand is a module ``logicforge/commands/<verb>.py`` that defines ``configure(parser)`` and
``run(args) -> int`` and imports heavy libraries (torch, amaranth) only inside ``run``. Bad input
raises ``LogicforgeError``: one line on stderr, exit status 2, for every command.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from logicforge.errors import LogicforgeError

#: name -> (module, one-line help)
COMMANDS = {
    "train": ("logicforge.commands.train", "train a logic gate network and export its netlist"),
    "predict": ("logicforge.commands.predict", "classify an (n, F) integer .npy array with a netlist"),
    "passes": ("logicforge.commands.passes", "run the netlist optimisation passes and report gate counts"),
    "verilog": ("logicforge.commands.verilog", "generate the pipelined core and board top as Verilog"),
    "sim": ("logicforge.commands.sim", "check bit-exact parity of the core (--top: the whole board top over its UART) in Verilator"),
    "verify": ("logicforge.commands.verify", "prove the generated core equivalent to its netlist (yosys SAT)"),
    "estimate": ("logicforge.commands.estimate", "predict LUT4, FF and logic cells of a design without synthesis"),
    "synth": ("logicforge.commands.synth", "synthesise and place-and-route with yosys/nextpnr"),
    "bitstream": ("logicforge.commands.bitstream", "build the board bitstream (.bin)"),
    "program": ("logicforge.commands.program", "program the board with iceprog"),
    "demo": ("logicforge.commands.demo", "train, generate, simulate and synthesise the default model"),
    "bench": ("logicforge.commands.bench", "benchmark training-step speed and discrete evaluation"),
    "experiment": ("logicforge.commands.experiment", "compare the training estimators over seeds and temperatures"),
    "kernel": ("logicforge.commands.kernel", "build the C++ training kernel, or say where it is cached"),
    "measure": ("logicforge.commands.measure", "developer: iCE40 cost of the core for several pipeline depths"),
    "triton-check": ("logicforge.commands.triton_check", "developer: check and time the Triton kernels"),
}

#: Developer commands: they work like the others but are not listed by ``logicforge --help``.
HIDDEN = frozenset({"measure", "triton-check"})

#: The exit status of every command on bad input or a failed step (``LogicforgeError``).
EXIT_ERROR = 2


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (argparse itself prints the whole usage first); the
    subcommands' parsers are of this class too."""

    def error(self, message: str):
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(selected: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; only the ``selected`` subcommand's module is imported and configured."""
    parser = _Parser(
        prog="logicforge",
        description="Train logic gate networks and compile them to bit-exact FPGA gateware.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module, help_text) in COMMANDS.items():
        listed = {} if name in HIDDEN else {"help": help_text}  # no help: not in the command list
        p = sub.add_parser(name, description=help_text, **listed)
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
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"logicforge {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (``logicforge estimate ... | head -1``): stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return 141


if __name__ == "__main__":
    sys.exit(main())
