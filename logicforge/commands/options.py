"""Options that several commands share, each declared and checked in this one place.

* :func:`add_source`: where the netlist comes from (``--run``/``--netlist``) and ``--build-dir``;
  resolved by ``logicforge.source``.
* :func:`add_board`: ``--board``; the help lists the names of ``boards.registry``; the name is
  checked by ``registry.get_board`` (one-line error naming the known boards).
* :func:`add_layers_per_stage`: ``--layers-per-stage``, checked by :func:`check_layers_per_stage`.
* :func:`add_top_options`: the board top's ``--clock-mhz`` and ``--baud``.
* :func:`add_encoder`: the board top's ``--encoder``, checked by :func:`check_encoder`.
* :func:`add_placement`: nextpnr's ``--placement`` (argparse ``choices``; cli prints its errors in one line).
* :func:`at_least` and :func:`positive`: the numeric checks, as one-line ``LogicforgeError``\\ s
  (exit status 2), never argparse's two-line usage errors.

Nothing heavy is imported here: a command's ``configure`` runs for ``logicforge <command> --help``.
"""

from __future__ import annotations

import argparse

from logicforge.errors import LogicforgeError

DEFAULT_BOARD = "icebreaker"


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def at_least(args: argparse.Namespace, dest: str, minimum: int | float) -> None:
    """Raise ``--opt must be at least M, got V`` unless ``args.<dest>`` is None or >= ``minimum``.

    For an option that takes several values (``nargs``), every value is checked.
    """
    value = getattr(args, dest, None)
    for v in value if isinstance(value, list) else [value]:
        if v is not None and not v >= minimum:
            raise LogicforgeError(f"{_flag(dest)} must be at least {minimum:g}, got {v:g}")


def positive(args: argparse.Namespace, dest: str) -> None:
    """Raise ``--opt must be positive, got V`` unless ``args.<dest>`` is None or > 0."""
    value = getattr(args, dest, None)
    if value is not None and not value > 0:
        raise LogicforgeError(f"{_flag(dest)} must be positive, got {value:g}")


def add_source(p: argparse.ArgumentParser) -> None:
    """``--run DIR`` or ``--netlist FILE`` (exclusive), and ``--build-dir``."""
    from logicforge import source

    g = p.add_mutually_exclusive_group()
    g.add_argument("--run", metavar="DIR", help=f"a training run directory (default {source.DEFAULT_RUN})")
    g.add_argument("--netlist", metavar="FILE", help="a netlist JSON file")
    p.add_argument("--build-dir", metavar="DIR", default=str(source.BUILD_ROOT),
                   help="root of the build tree (default build/)")


def add_board(p: argparse.ArgumentParser, *, default: str = DEFAULT_BOARD) -> None:
    """``--board NAME``; the known names come from the board registry."""
    from logicforge.boards.registry import board_names

    p.add_argument("--board", default=default,
                   help=f"target board (default {default}); known: {', '.join(board_names())} "
                        f"('generic' is the core alone)")


def add_layers_per_stage(p: argparse.ArgumentParser) -> None:
    p.add_argument("--layers-per-stage", type=int, default=None, metavar="N",
                   help="gate levels between pipeline registers of the core (default: the measured "
                        "default of the head, hdl.pipeline.DEFAULT_LAYERS_PER_STAGE (tree, 3) or "
                        "DEFAULT_SERIAL_LAYERS_PER_STAGE (serial, 2); 1 for a netlist with LUT4 nodes, "
                        "DEFAULT_TABLE_LAYERS_PER_STAGE)")


def check_layers_per_stage(args: argparse.Namespace) -> None:
    """Check ``--layers-per-stage`` (and ``--popcount-levels-per-stage``); without the option, a
    training run's own ``hardware.layers_per_stage`` (its saved config) becomes the value, so every
    command builds the pipelining the run was fitted for."""
    if getattr(args, "layers_per_stage", None) is None:
        from logicforge import source

        value = source.run_hardware(args).get("layers_per_stage")
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise LogicforgeError(f"{source.netlist_path(args).parent / 'config.yaml'}: "
                                      f"hardware.layers_per_stage must be an integer >= 1, got {value!r}")
            args.layers_per_stage = value
    at_least(args, "layers_per_stage", 1)
    at_least(args, "popcount_levels_per_stage", 1)


def add_popcount_levels_per_stage(p: argparse.ArgumentParser) -> None:
    p.add_argument("--popcount-levels-per-stage", type=int, default=None, metavar="N",
                   help="popcount adder levels between pipeline registers of the head (default: the "
                        "measured default, hdl.pipeline.DEFAULT_POPCOUNT_LEVELS_PER_STAGE); more levels, "
                        "fewer flip-flops")


def add_head(p: argparse.ArgumentParser) -> None:
    """``--head {serial,tree}``: the core's classifier head in a board top."""
    p.add_argument("--head", choices=("serial", "tree"), default=None,
                   help="the board top's classifier head (default serial: one bit per class per clock, "
                        "G + 2K + 3 cycles per sample, far fewer logic cells; tree: pipelined, one sample "
                        "per clock)")


def add_placement(p: argparse.ArgumentParser) -> None:
    """``--placement {auto,timing,wirelength}``: how nextpnr places (``boards.flow.choose_placement``)."""
    from logicforge.boards.registry import PLACEMENTS

    p.add_argument("--placement", choices=PLACEMENTS, default="auto",
                   help="how nextpnr places: timing-driven, or for wirelength alone (--no-tmdriv: fewer "
                        "congested routes, lower Fmax); auto (default) places for wirelength when the design "
                        "fills more than the board's share (ulx3s-85f: half the LUT4 sites), else for timing")


def add_encoder(p: argparse.ArgumentParser) -> None:
    """``--encoder {stream,shift}``: the board top's threshold encoder (``boards.top.ENCODERS``)."""
    p.add_argument("--encoder", choices=("stream", "shift"), default=None,
                   help="the board top's threshold encoder (default: the run's hardware.encoder, else "
                        "stream: a compare per ROM slot, each bit written by its own LUT; shift: one compare "
                        "per cycle into a shift chain, fewer cells and routes)")


def check_encoder(args: argparse.Namespace) -> None:
    """Without ``--encoder``, a training run's own ``hardware.encoder`` (its saved config) becomes the
    value, as for ``--layers-per-stage``."""
    if getattr(args, "encoder", None) is None:
        from logicforge import source

        value = source.run_hardware(args).get("encoder")
        if value is not None:
            from logicforge.boards.top import ENCODERS

            if value not in ENCODERS:
                raise LogicforgeError(f"{source.netlist_path(args).parent / 'config.yaml'}: "
                                      f"hardware.encoder must be one of {', '.join(ENCODERS)}, got {value!r}")
            args.encoder = value


def add_top_options(p: argparse.ArgumentParser) -> None:
    """The board top's clock and UART rate (boards with a top level)."""
    p.add_argument("--clock-mhz", type=float, default=None, metavar="MHZ",
                   help="system clock: the board's oscillator by default (icebreaker 12, ulx3s-85f 25); "
                        "other values use the PLL (iCE40 16-275, ECP5 10-400)")
    p.add_argument("--baud", type=int, default=None, metavar="RATE", help="UART baud rate (default 115200)")


def check_top_options(args: argparse.Namespace) -> None:
    positive(args, "clock_mhz")
    positive(args, "baud")


def add_board_build(p: argparse.ArgumentParser) -> None:
    """What ``synth``, ``bitstream`` and ``program`` take: board, source, core and top options."""
    add_board(p)
    add_source(p)
    add_top_options(p)
    add_layers_per_stage(p)
    add_popcount_levels_per_stage(p)
    add_head(p)
    add_encoder(p)
    add_placement(p)


def load_board_build(args: argparse.Namespace):
    """(board, netlist, outdir) for :func:`add_board_build`'s options; checks the board name and
    the numbers before loading anything heavy."""
    from logicforge import source
    from logicforge.boards.registry import get_board

    board = get_board(args.board)
    check_top_options(args)
    check_layers_per_stage(args)
    check_encoder(args)
    net, _name = source.load(args)
    return board, net, source.build_dir(args, board.name)
