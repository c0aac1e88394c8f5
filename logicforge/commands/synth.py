"""``logicforge synth``: yosys synth_ice40 + nextpnr-ice40 for a board; writes build/<name>/<board>/synth.json.

Exit status 2 with one line when the board is unknown, the netlist is bad, a tool fails, the design
does not fit, or its Fmax is below the clock. For ``--board generic`` it reports yosys utilisation
of the core alone (no place-and-route, no Fmax).
"""

from __future__ import annotations

from logicforge.commands import options


def configure(p) -> None:
    options.add_board_build(p)


def run(args) -> int:
    from logicforge.boards import flow

    board, net, outdir = options.load_board_build(args)
    if not board.has_top and (args.clock_mhz or args.baud):
        print(f"synth: note: --clock-mhz/--baud are ignored for board {board.name} (no top, no clock)")
    result = flow.synth(net, board.name, outdir, layers_per_stage=args.layers_per_stage,
                        popcount_levels_per_stage=args.popcount_levels_per_stage, head=args.head,
                        clock_mhz=args.clock_mhz, baud=args.baud, placement=args.placement,
                        encoder=args.encoder)
    print(flow.summary(result))
    print(f"wrote {outdir / flow.SYNTH_JSON}")
    flow.check(result)
    return 0
