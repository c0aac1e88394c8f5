"""``logicforge estimate``: predicted LUT4, flip-flops and logic cells of a netlist's board design,
in under a second and without synthesis (the cost model of ``logicforge.boards.estimate``)."""

from __future__ import annotations


def configure(p) -> None:
    from logicforge import source
    from logicforge.commands import options

    p.add_argument("--board", default="icebreaker",
                   help="icebreaker (UART top and its threshold encoder; default), ulx3s-85f (the same top on ECP5; "
                        "LUT4 counts are LUT4 sites) or generic (the core alone)")
    source.add_arguments(p)
    p.add_argument("--clock-mhz", type=float, default=None, metavar="MHZ", help="system clock (default 12)")
    p.add_argument("--layers-per-stage", type=int, default=None, metavar="N",
                   help="gate levels per pipeline stage (default: the measured default)")
    p.add_argument("--popcount-levels-per-stage", type=int, default=None, metavar="N",
                   help="popcount levels per pipeline stage (default: the measured default)")
    p.add_argument("--head", choices=("serial", "tree"), default=None,
                   help="the classifier head (default: serial for a board top, tree for generic)")
    options.add_encoder(p)
    p.add_argument("--json", action="store_true", help="print the estimate as JSON")


def run(args) -> int:
    import json

    from logicforge import source
    from logicforge.boards.estimate import estimate
    from logicforge.boards.registry import get_board
    from logicforge.commands import options
    from logicforge.errors import LogicforgeError

    board = get_board(args.board)
    if args.clock_mhz is not None and not args.clock_mhz > 0:
        raise LogicforgeError(f"--clock-mhz must be positive, got {args.clock_mhz:g}")
    options.check_layers_per_stage(args)
    options.check_encoder(args)
    net, name = source.load(args)
    est = estimate(net, board=board.name, layers_per_stage=args.layers_per_stage,
                   popcount_levels_per_stage=args.popcount_levels_per_stage, clock_mhz=args.clock_mhz,
                   head=args.head, encoder=args.encoder)
    if args.json:
        print(json.dumps(est, indent=1))
        return 0
    avail = board.lcs_available
    fit = f" of {avail} ({100 * est['lcs'] / avail:.1f} %)" if avail else ""
    print(f"{name} on {board.name}: about {est['lcs']} logic cells{fit}, {est['luts']} LUT4, {est['ffs']} FF "
          f"(estimate, no synthesis; {est['gates_after']} gates, {est['comparators']} comparators"
          f"{', ' + est['encoder'] + ' encoder' if est['encoder'] else ''}, latency {est['latency_cycles']} cycles)")
    print("  LC split: " + ", ".join(f"{p} {d['lcs']}" for p, d in est["parts"].items()))
    return 0
