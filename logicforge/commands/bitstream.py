"""``logicforge bitstream``: build/<name>/<board>/top.bin with icepack (runs synth unless the same
design was already placed and routed)."""

from __future__ import annotations

from logicforge.commands import options


def configure(p) -> None:
    options.add_board_build(p)
    p.add_argument("--allow-timing-fail", action="store_true",
                   help="write the bitstream even when Fmax is below the clock")


def run(args) -> int:
    from logicforge.boards import flow

    board, net, outdir = options.load_board_build(args)
    flow.bitstream(net, board.name, outdir, layers_per_stage=args.layers_per_stage,
                   popcount_levels_per_stage=args.popcount_levels_per_stage, head=args.head,
                   clock_mhz=args.clock_mhz, baud=args.baud, placement=args.placement,
                   encoder=args.encoder,
                   allow_timing_fail=args.allow_timing_fail)
    return 0
