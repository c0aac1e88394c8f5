"""``logicforge verilog``: write build/<name>/<board>/core.v (+ core.json) and the board top."""

from __future__ import annotations

from logicforge.commands import options

GENERIC = "generic"


def configure(p) -> None:
    options.add_board(p)
    options.add_source(p)
    options.add_layers_per_stage(p)
    p.add_argument("--head", choices=("serial", "tree"), default=None,
                   help="the classifier head: given, of core.v and the board top; by default core.v has "
                        "the tree head (one sample per clock) and a board top the serial head")
    options.add_encoder(p)


def run(args) -> int:
    from logicforge import source
    from logicforge.boards.registry import get_board
    from logicforge.errors import LogicforgeError
    from logicforge.fileio import write_json, write_text
    from logicforge.hdl.verilog import core_verilog

    options.check_layers_per_stage(args)
    board = get_board(args.board)  # LogicforgeError naming the known boards; before the slow part
    if board.name == GENERIC and args.encoder is not None:
        raise LogicforgeError(f"--encoder applies to a board top; --board {GENERIC} writes the core alone")
    options.check_encoder(args)
    net, name = source.load(args)
    outdir = source.build_dir(args, board.name)
    text, info = core_verilog(net, layers_per_stage=args.layers_per_stage, head=args.head)
    info["design"] = name
    info["board"] = board.name
    write_text(outdir / "core.v", text)
    write_json(outdir / "core.json", info)
    print(f"wrote {outdir / 'core.v'}: module logicnet_core, {info['gates_before']} -> "
          f"{info['gates_after']} gates, {info['comparators']} comparators, "
          f"latency {info['latency_cycles']} cycles (layers_per_stage {info['layers_per_stage']})")
    if board.name != GENERIC:
        # the top's own default layers_per_stage (per head) unless one was given
        for path in board.write_top(net, outdir, {**info, "layers_per_stage": args.layers_per_stage},
                                    head=args.head, encoder=args.encoder):
            print(f"wrote {path}")
    return 0
