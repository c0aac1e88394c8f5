"""``logicforge verify``: prove the generated ``logicnet_core`` equivalent to its netlist.

Writes ``build/<name>/verify/report.json`` (atomically; removed first so an old verdict never
survives) and, when the core and the netlist differ, ``counterexample.npy``: a (1, F) feature
array that ``logicforge predict --input`` and ``logicforge sim --input`` replay. Exit status 0:
proven; 2: not equivalent, or bad input; 1: the proof did not finish (the report then says what the
fallback simulation covered). Method: docs/verification.md.
"""

from __future__ import annotations

from pathlib import Path

from logicforge import source
from logicforge.commands import options

DEFAULT_TIMEOUT_S = 600
DEFAULT_FALLBACK_RANDOM = 10000
#: Input spaces up to this many bits are simulated exhaustively when the proof does not finish.
EXHAUSTIVE_BITS = 16


def configure(p) -> None:
    options.add_source(p)
    options.add_board(p, default="generic")  # every board embeds the same core
    options.add_layers_per_stage(p)
    p.add_argument("--core", metavar="FILE.v",
                   help="check this logicnet_core Verilog (e.g. an edited core.v) instead of generating it")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S",
                   help=f"time limit of the proof in seconds (default {DEFAULT_TIMEOUT_S})")
    p.add_argument("--fallback-random", type=int, default=DEFAULT_FALLBACK_RANDOM, metavar="N",
                   help="random vectors simulated in Verilator when the proof does not finish "
                        f"(default {DEFAULT_FALLBACK_RANDOM}; inputs of <= {EXHAUSTIVE_BITS} bits: all)")


def run(args) -> int:
    import numpy as np

    from logicforge.boards.registry import get_board
    from logicforge.errors import LogicforgeError
    from logicforge.fileio import atomic_path, write_json
    from logicforge.hdl import pipeline
    from logicforge.sim import formal

    options.positive(args, "timeout")
    options.at_least(args, "fallback_random", 0)
    options.check_layers_per_stage(args)
    lps = pipeline.check_layers_per_stage(args.layers_per_stage)
    board = get_board(args.board)
    core_text = None
    if args.core:
        try:
            core_text = Path(args.core).read_text()
        except (OSError, UnicodeDecodeError) as e:
            raise LogicforgeError(f"{args.core}: cannot read ({e.__class__.__name__})") from None
    net, name = source.load(args)
    out = source.build_dir(args, "verify")
    out.mkdir(parents=True, exist_ok=True)
    report_path, cex_path = out / "report.json", out / "counterexample.npy"
    report_path.unlink(missing_ok=True)
    cex_path.unlink(missing_ok=True)

    result = formal.prove(net, out / "work", layers_per_stage=lps, core_text=core_text,
                          timeout=args.timeout, log=print)
    report = {"design": name, "board": board.name, "core": str(args.core) if args.core else "generated",
              "netlist": str(source.netlist_path(args)), **result}
    verdict = result["verdict"]
    if verdict == "equivalent":
        report["proven"] = ("for every input, out_class and out_scores equal the netlist's "
                            f"{result['latency_cycles']} cycles after in_valid, one sample per clock; "
                            "out_valid is in_valid delayed by the latency, cleared by rst")
        write_json(report_path, report)
        steps = result["steps"]
        print(f"verify: EQUIVALENT, proven for all 2^{result['inputs']['input_bits']} inputs "
              f"(latency {result['latency_cycles']}, structure {steps['structure']['seconds']:.1f} s, "
              f"datapath SAT {steps['datapath']['seconds']:.1f} s, valid chain {steps['valid']['seconds']:.1f} s; "
              f"{result['seconds']:.1f} s in all)")
        print(f"wrote {report_path}")
        return 0

    if verdict == "not_equivalent":
        write_json(report_path, report)
        cex = result.get("counterexample")
        if cex is None:
            raise LogicforgeError(f"not equivalent: {result.get('reason')} (report: {report_path})")
        with atomic_path(cex_path) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, np.array([cex["features"]], dtype=np.int64))
        report["counterexample_file"] = str(cex_path)
        write_json(report_path, report)
        src = f"--netlist {args.netlist}" if args.netlist else f"--run {args.run or source.DEFAULT_RUN}"
        print(f"verify: NOT EQUIVALENT for features {cex['features']}: the core gives class "
              f"{cex['core_class']} scores {cex['core_scores']}, the netlist class {cex['reference_class']} "
              f"scores {cex['reference_scores']}")
        print(f"verify: replay: logicforge predict --netlist {source.netlist_path(args)} --input {cex_path} "
              f"--output p.npz;  logicforge sim {src} --input {cex_path} --random 0"
              + (f" --core {args.core}" if args.core else ""))
        raise LogicforgeError(f"the core is not equivalent to the netlist; counterexample {cex_path} "
                              f"(report: {report_path})")

    # unknown: say so, then simulate what can be covered
    print(f"verify: NOT PROVEN: {result.get('reason')}")
    report["proven"] = None
    report["fallback"] = _fallback(net, args, lps, core_text, out)
    write_json(report_path, report)
    fb = report["fallback"]
    print(f"verify: fallback simulation: {fb['kind']}, {fb['samples']} samples bit-exact in Verilator "
          f"(this is evidence, not a proof)")
    print(f"wrote {report_path}")
    return 1


def _fallback(net, args, lps, core_text, out) -> dict:
    """Simulate all inputs (small input spaces) or ``--fallback-random`` random ones in Verilator."""
    import itertools

    import numpy as np

    from logicforge.hdl.verilog import core_verilog
    from logicforge.sim.parity import run_parity

    bits = net.features * net.feature_width
    if bits <= EXHAUSTIVE_BITS:
        values = range(1 << net.feature_width)
        x = np.array(list(itertools.product(values, repeat=net.features)), dtype=np.int64)[:, ::-1]
        kind, random = f"exhaustive (all 2^{bits} inputs)", 0
    else:
        x, kind, random = None, f"{args.fallback_random} uniform random inputs", args.fallback_random

    def generate(n, layers_per_stage=None):
        text, info = core_verilog(n, layers_per_stage=layers_per_stage)
        return (core_text if core_text is not None else text), info

    sim = run_parity(net, x, random=random, layers_per_stage=lps, build_dir=out / "fallback_sim",
                     generate=generate, log=print)
    return {"kind": kind, "samples": sim["samples"], "passed": sim["passed"], "engine": "Verilator (cocotb)",
            "seconds": round(sim["generate_seconds"] + sim["build_seconds"] + sim["sim_seconds"], 3)}
