"""``logicforge sim``: bit-exact parity of the generated core in Verilator via cocotb.

Streams the run's test set (``runs/<name>/test_set.npz``, or ``--input X.npy``) and ``--random N``
uniform random feature vectors through ``logicnet_core``, one sample per clock, and compares class
and scores of every sample with the reference evaluator. Writes ``build/<name>/sim/report.json``.
"""

from __future__ import annotations

from pathlib import Path

from logicforge import source
from logicforge.commands import options


def configure(p) -> None:
    options.add_source(p)
    p.add_argument("--random", type=int, default=10000, metavar="N",
                   help="number of uniform random feature vectors to check (default 10000)")
    p.add_argument("--input", metavar="X.npy",
                   help="(n, F) integer array of quantised features to check instead of the run's test set")
    options.add_layers_per_stage(p)
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the random vectors (default 0)")


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


def run(args) -> int:
    from logicforge.sim.parity import run_parity

    options.at_least(args, "random", 0)
    options.check_layers_per_stage(args)
    net, name = source.load(args)
    x_test, where = load_test_set(args, net)
    if x_test is None and where is not None:
        print(f"sim: note: {where} not found; checking random vectors only")
    out = source.build_dir(args, "sim")
    report = run_parity(net, x_test, random=args.random, layers_per_stage=args.layers_per_stage,
                        build_dir=out, seed=args.seed, log=print)
    n = report["samples"]
    print(f"parity: {n}/{n} bit-exact ({report['test_samples']} test-set, {report['random_samples']} random, "
          f"{report['reset_phase_samples']} around resets)")
    built = "cached" if report["build_cached"] else f"{report['build_seconds']:.1f} s"
    print(f"latency {report['latency_cycles']} cycles, {report['samples_per_cycle']:.3f} samples/cycle, "
          f"sim {report['sim_seconds']:.1f} s ({report['cycles_per_second']} cycles/s), build {built}")
    print(f"wrote {out / 'report.json'}")
    return 0
