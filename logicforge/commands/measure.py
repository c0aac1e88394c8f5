"""``logicforge measure`` (developer): iCE40UP5K cost of the core for several pipeline depths.

For every ``--lps`` x ``--plps`` pair: the core alone through yosys ``synth_ice40`` and, unless
``--no-pnr``, the core in a small pin-saving wrapper through nextpnr (``boards.measure``). Prints
one JSON row per configuration and writes them all to ``<out>/results.json``.
"""

from __future__ import annotations

from pathlib import Path

from logicforge.commands import options


def configure(p) -> None:
    p.add_argument("--lps", type=int, nargs="+", default=[1, 2, 3], metavar="N",
                   help="layers per stage to measure (default 1 2 3)")
    p.add_argument("--plps", type=int, nargs="+", default=[None], metavar="N",
                   help="popcount levels per stage (default: the default)")
    p.add_argument("--no-pnr", action="store_true", help="only the out-of-context core synthesis")
    p.add_argument("--pack-only", action="store_true", help="nextpnr packs only: logic cells, no Fmax")
    p.add_argument("--out", default="build/measure", metavar="DIR", help="work and results directory")
    p.add_argument("--netlist", default=None, metavar="FILE",
                   help="netlist JSON (default: a random 3 x 1000-gate netlist)")
    p.add_argument("--seed", type=int, default=1, help="nextpnr seed")
    p.add_argument("--freq", type=float, default=100.0, metavar="MHZ", help="nextpnr target MHz")
    p.add_argument("--no-core-only", action="store_true", help="skip the out-of-context core synthesis")


def run(args) -> int:
    import json
    import os

    from logicforge.boards import measure
    from logicforge.fileio import write_json
    from logicforge.netlist import format as nf

    options.at_least(args, "lps", 1)
    options.at_least(args, "plps", 1)
    options.positive(args, "freq")
    os.environ.setdefault("YOWASP_MAKE_SILENT", "1")
    net = nf.load(args.netlist) if args.netlist else measure.default_netlist()
    out = Path(args.out)
    results = []
    for lps in args.lps:
        for plps in args.plps:
            r = measure.measure(net, lps, out, plps=plps, freq=args.freq, seed=args.seed,
                                core_only=not args.no_core_only, pnr=not args.no_pnr, pack_only=args.pack_only)
            print(json.dumps(r), flush=True)
            results.append(r)
            write_json(out / "results.json", results)
    return 0
