"""``logicforge sim``: bit-exact parity of the generated core in Verilator via cocotb.

Streams the run's test set (``runs/<name>/test_set.npz``, or ``--input X.npy``) and ``--random N``
uniform random feature vectors through ``logicnet_core``, one sample per clock, and compares class
and scores of every sample with the reference evaluator. Writes ``build/<name>/sim/report.json``.

``--top`` checks the whole board top instead (``sim.uart_parity``): the samples go in as bytes
over its UART, at a small baud divisor, and every reply byte is compared with the reference class.
Writes ``build/<name>/sim_top/report.json``.
"""

from __future__ import annotations

from pathlib import Path

from logicforge import source
from logicforge.commands import options


#: Test-set samples that ``--top`` sends unless ``--images`` says otherwise.
TOP_IMAGES = 200
#: Random vectors of the core check unless ``--random`` says otherwise (``--top``: none).
CORE_RANDOM = 10000


def configure(p) -> None:
    options.add_source(p)
    p.add_argument("--top", action="store_true",
                   help="check the whole board top (UART, threshold encoder, core) instead of the core: "
                        "every sample as bytes over its UART, every reply against the reference class")
    p.add_argument("--images", metavar="N|all",
                   help=f"check the first N samples of the test set, or all (default: all; {TOP_IMAGES} with --top)")
    p.add_argument("--random", type=int, default=None, metavar="N",
                   help=f"number of uniform random feature vectors to check (default {CORE_RANDOM}; 0 with --top)")
    p.add_argument("--input", metavar="X.npy",
                   help="(n, F) integer array of quantised features to check instead of the run's test set")
    options.add_layers_per_stage(p)
    p.add_argument("--head", choices=("serial", "tree"), default=None,
                   help="the core's classifier head (default: tree for the core check, serial with --top, "
                        "as the generic core and the board top are built)")
    options.add_encoder(p)
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the random vectors (default 0)")
    p.add_argument("--core", metavar="FILE.v",
                   help="simulate this logicnet_core Verilog (e.g. an edited core.v) instead of generating it")
    p.add_argument("--divisor", type=int, default=None, metavar="D",
                   help="with --top: clock cycles per UART bit in simulation (default: "
                        "sim.uart_parity.DEFAULT_DIVISOR, the smallest the receiver takes)")
    p.add_argument("--wait-replies", action="store_true",
                   help="with --top: send each sample only after the previous reply (default: back to back)")


def _images(args):
    """``--images`` as a count (None: all); LogicforgeError for anything but a count >= 1 or 'all'."""
    from logicforge.errors import LogicforgeError

    text = args.images
    if text is None:
        return TOP_IMAGES if args.top else None
    if str(text).strip().lower() == "all":
        return None
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise LogicforgeError(f"--images must be a count of at least 1 or 'all', got {text!r}")
    return n


def load_test_set(args, net):
    """The samples to check besides the random ones: --input, else the run's test_set.npz, else None."""
    import numpy as np

    from logicforge.errors import LogicforgeError
    from logicforge.netlist import reference

    if args.input:
        from logicforge.fileio import load_array

        path = Path(args.input)
        x = load_array(path)
    elif args.netlist:
        return None, None
    else:
        path = Path(args.run or source.DEFAULT_RUN) / "test_set.npz"
        if not path.is_file():
            return None, path
        try:
            with np.load(path, allow_pickle=False) as f:
                if "x" not in f.files:
                    raise LogicforgeError(f"{path}: has no array 'x' (keys: {', '.join(f.files)})")
                x = f["x"]
        except (ValueError, OSError) as e:
            raise LogicforgeError(f"{path}: not a readable .npz archive ({e})") from None
    try:
        return reference.check_features(net, x), path
    except LogicforgeError as e:
        raise LogicforgeError(f"{path}: {e}") from None


def _given_core(path, head=None):
    """None (generate the core), or a generator that returns the Verilog of ``path`` with the
    generator's info (latency) for the netlist; ``head`` is the core's head (None: the default)."""
    if not path:
        if head is None:
            return None

        def generate_head(net, layers_per_stage=None):
            from logicforge.hdl.verilog import core_verilog

            return core_verilog(net, layers_per_stage=layers_per_stage, head=head)

        return generate_head
    from logicforge.errors import LogicforgeError

    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise LogicforgeError(f"{path}: cannot read ({e.__class__.__name__})") from None

    def generate(net, layers_per_stage=None):
        from logicforge.hdl.verilog import core_verilog

        return text, core_verilog(net, layers_per_stage=layers_per_stage, head=head)[1]

    return generate


def _check_options(args) -> None:
    """The option checks, before anything is loaded: one-line errors."""
    from logicforge.errors import LogicforgeError

    options.at_least(args, "random", 0)
    options.check_layers_per_stage(args)
    if args.top:
        from logicforge.boards.uart import MIN_DIVISOR

        options.at_least(args, "divisor", MIN_DIVISOR)
        if args.core:
            raise LogicforgeError("--core replaces the core of the core check; it does not apply to --top")
    else:
        for flag, given in (("--divisor", args.divisor is not None), ("--wait-replies", args.wait_replies),
                            ("--encoder", args.encoder is not None)):
            if given:
                raise LogicforgeError(f"{flag} applies to --top only")
    options.check_encoder(args)


def run(args) -> int:
    _check_options(args)
    images = _images(args)
    if args.random is None:
        args.random = 0 if args.top else CORE_RANDOM
    net, name = source.load(args)
    x_test, where = load_test_set(args, net)
    if x_test is None and where is not None:
        print(f"sim: note: {where} not found; checking random vectors only")
    if x_test is not None and images is not None:
        x_test = x_test[:images]
    if args.top:
        return _run_top(args, net, x_test)
    from logicforge.sim.parity import run_parity

    out = source.build_dir(args, "sim")
    report = run_parity(net, x_test, random=args.random, layers_per_stage=args.layers_per_stage,
                        build_dir=out, seed=args.seed, log=print, generate=_given_core(args.core, args.head))
    n = report["samples"]
    print(f"parity: {n}/{n} bit-exact ({report['test_samples']} test-set, {report['random_samples']} random, "
          f"{report['reset_phase_samples']} around resets)")
    built = "cached" if report["build_cached"] else f"{report['build_seconds']:.1f} s"
    print(f"{report['head'] or 'tree'} head: latency {report['latency_cycles']} cycles, "
          f"{report['samples_per_cycle']:.4f} samples/cycle, "
          f"sim {report['sim_seconds']:.1f} s ({report['cycles_per_second']} cycles/s), build {built}")
    print(f"wrote {out / 'report.json'}")
    return 0


#: The UART rate of the simulated top; with the clock at ``divisor`` times this, the top's divisor
#: is ``divisor`` (``boards.uart.divisor_for``). Only the divisor matters in simulation.
SIM_BAUD = 1_000_000


def _run_top(args, net, x_test) -> int:
    """``--top``: the board top over its UART (``sim.uart_parity.run_top_parity``)."""
    from logicforge.boards.top import encode_sample, top_verilog
    from logicforge.sim.uart_parity import DEFAULT_DIVISOR, run_top_parity

    divisor = args.divisor or DEFAULT_DIVISOR

    def generate(netlist):
        return top_verilog(netlist, clk_hz=divisor * SIM_BAUD, baud=SIM_BAUD,
                           layers_per_stage=args.layers_per_stage, head=args.head, encoder=args.encoder)

    out = source.build_dir(args, "sim_top")
    report = run_top_parity(net, x_test, generate=generate, encode=encode_sample, build_dir=out,
                            random=args.random, seed=args.seed, stream=not args.wait_replies, log=print)
    n = report["samples"]
    print(f"top: {n}/{n} replies equal the reference class ({report['test_samples']} test-set, "
          f"{report['random_samples']} random; {report['bytes_per_sample']} bytes each, {report['mode']}, "
          f"divisor {report['divisor']})")
    built = "cached" if report["build_cached"] else f"{report['build_seconds']:.1f} s"
    print(f"{report['cycles_per_sample']:g} cycles per sample, reply {report['reply_delay_cycles'][0]}-"
          f"{report['reply_delay_cycles'][1]} cycles after the last stop bit; sim {report['sim_seconds']:.1f} s "
          f"({report['seconds_per_sample'] * 1000:.1f} ms per sample), build {built}")
    print(f"wrote {out / 'report.json'}")
    return 0
