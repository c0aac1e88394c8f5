"""``logicforge bench``: training-step speed, memory and discrete evaluation; see ``train.bench``.

Runs every measurement of ``train.bench.plan`` in its own subprocess, writes ``bench/results.json``
(atomically) and prints a table. A measurement that fails is kept in the results with its
``error``, and the command then ends with exit status 2 like every other failed command.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

from logicforge.commands import options
from logicforge.errors import LogicforgeError


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="small sizes and few steps: a smoke run of every path")
    p.add_argument("--steps", type=int, default=None, metavar="N",
                   help="timed steps per measurement (default 10; 3 with --quick)")
    p.add_argument("--warmup", type=int, default=None, metavar="N",
                   help="untimed steps before timing (default 2; 1 with --quick)")
    p.add_argument("--device", choices=("cpu", "cuda"), default=None,
                   help="measure only this device (default: the CPU, and CUDA where a GPU exists)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="CPU threads per measurement (torch and OpenMP; default: torch's default, all cores). "
                        "On a shared, busy machine 1 gives steadier numbers")
    p.add_argument("--size", default=None, metavar="L,W,B,IN",
                   help="measure layers,width,batch,in_bits instead of the standard sizes (10 classes)")
    p.add_argument("--rounds", type=int, default=2, metavar="N",
                   help="time every measurement N times (fresh processes, one pass over all of them per "
                        "round) and keep the fastest (default 2)")
    p.add_argument("--out", default="bench/results.json", metavar="FILE",
                   help="where to write the results (default bench/results.json)")


def run(args) -> int:
    import torch

    from logicforge.fileio import write_json
    from logicforge.train import bench

    options.at_least(args, "steps", 1)
    options.at_least(args, "warmup", 0)
    options.at_least(args, "threads", 1)
    options.at_least(args, "rounds", 1)
    bench.cpu_size_for(args)  # validate --size before starting
    cuda_ok = torch.cuda.is_available()
    if args.device == "cuda" and not cuda_ok:
        raise LogicforgeError("--device cuda: no CUDA GPU is available on this machine")
    devices = [args.device] if args.device else ["cpu", "cuda"]
    specs, notes = bench.plan(args, devices, cuda_ok)

    t_start = time.perf_counter()
    load_start = [round(v, 2) for v in os.getloadavg()]
    best: list[dict | None] = [None] * len(specs)
    for rnd in range(args.rounds):
        for i, spec in enumerate(specs):
            what = (f"{spec['kind']} {spec['device']}" if spec["kind"] != "train"
                    else f"{spec['impl']} {spec['mode']} {spec['device']} {spec['layers']}x{spec['width']}")
            print(f"[round {rnd + 1}/{args.rounds}] [{i + 1}/{len(specs)}] {what} ...", file=sys.stderr, flush=True)
            res = bench.measure_entry(spec if rnd == 0 else {**spec, "no_memory_run": True})
            best[i] = bench.keep_best(best[i], res)
    entries = [e for e, sp in zip(best, specs) if sp["kind"] == "train"]
    evals = [e for e, sp in zip(best, specs) if sp["kind"] == "eval"]
    peaks = [e for e, sp in zip(best, specs) if sp["kind"] == "peak"]
    bench.add_floor(entries, peaks)

    speedups = bench.speedups(entries)
    cpu_size = bench.cpu_size_for(args)

    def cpu_speedup(mode, other="naive"):
        key = f"cpu_{cpu_size['layers']}x{cpu_size['width']}_b{cpu_size['batch']}_{mode}_vs_{other}"
        return speedups[key]["speedup"] if key in speedups else None

    argv = sys.argv[1:]
    result = {
        "command": "logicforge " + " ".join(argv[argv.index("bench"):] if "bench" in argv else ["bench"]),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "quick": bool(args.quick),
        "threads": args.threads,
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpu_count": os.cpu_count(),
                    "torch": torch.__version__, "default_torch_threads": torch.get_num_threads(),
                    "cuda_device": torch.cuda.get_device_name(0) if cuda_ok else None,
                    "load_average_at_start": load_start,
                    "load_average_at_end": [round(v, 2) for v in os.getloadavg()]},
        "measurements": entries,
        "eval": evals,
        "peak": peaks,
        "rounds": args.rounds,
        "cpu_speedup_gumbel": cpu_speedup("gumbel"),
        "cpu_speedup_softmax": cpu_speedup("softmax"),
        "cpu_speedup_vs_torchlogix_gumbel": cpu_speedup("gumbel", "torchlogix"),
        "cpu_speedup_vs_torchlogix_softmax": cpu_speedup("softmax", "torchlogix"),
        "speedups": speedups,
        "notes": notes,
        "wall_seconds": round(time.perf_counter() - t_start, 1),
    }
    write_json(args.out, result)
    print(bench.table(entries + peaks + evals, notes))
    for mode in ("gumbel", "softmax"):
        if result[f"cpu_speedup_{mode}"] is not None:
            print(f"cpu speedup over the naive 16-op formulation, {mode}: {result[f'cpu_speedup_{mode}']:.1f}x")
        if result[f"cpu_speedup_vs_torchlogix_{mode}"] is not None:
            print(f"cpu speedup over torchlogix LogicDense, {mode}: {result[f'cpu_speedup_vs_torchlogix_{mode}']:.1f}x")
    print(f"load average: {load_start} at the start, {result['machine']['load_average_at_end']} at the end")
    print(f"results: {args.out}")
    failed = [e for e in entries + evals + peaks if "error" in e]
    if failed:
        raise LogicforgeError(f"{len(failed)} of {len(entries) + len(evals) + len(peaks)} measurements failed "
                              f"(first: {failed[0]['error']}); results: {args.out}")
    return 0
