"""The streaming parity check of ``logicnet_core`` in Verilator against the reference evaluator.

``run_parity`` generates the core for a netlist, streams the test set and random feature vectors
through it one per clock (``logicforge.sim.core_tb`` under ``sim.runner.run_cocotb``), and compares
every output with the reference evaluator on the original netlist; ``logicforge.sim.stimulus``
holds the schedule and the rules. It raises ``LogicforgeError`` with one line unless the run is
bit-exact.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from logicforge.errors import LogicforgeError
from logicforge.fileio import write_npz, write_text
from logicforge.sim.runner import ENV_OBSERVED, ENV_STIMULUS, conclude, handoff_paths, take_handoff

#: The cocotb test module that streams the parity schedule through ``logicnet_core``.
CORE_TEST_MODULE = "logicforge.sim.core_tb"
CORE_TOPLEVEL = "logicnet_core"
CORE_PORTS = ("clk", "rst", "in_valid", "in_data", "out_valid", "out_class", "out_scores")


@dataclass
class _Core:
    """The generated core: its Verilog (written to ``path``) and ``core_verilog``'s info."""

    verilog: str
    info: dict
    path: Path
    latency: int
    seconds: float


def run_parity(netlist, x_test=None, *, random: int = 10000, layers_per_stage: int | None = None,
               build_dir: str | os.PathLike, seed: int = 0,
               reference: Callable | None = None, generate: Callable | None = None,
               log: Callable[[str], None] | None = None) -> dict:
    """Stream samples through the generated ``logicnet_core`` in Verilator; return the report.

    Samples: every row of ``x_test`` ((n, F) quantised features, may be None) and ``random``
    uniform random feature vectors (seeded by ``seed``), plus a few around resets. Every output is
    compared with ``reference(netlist, x) -> (scores, classes)`` (default: the reference evaluator
    on the original netlist); out_valid, the latency and the throughput are checked too.
    ``generate(netlist, layers_per_stage=...) -> (verilog, info)`` defaults to
    ``logicforge.hdl.verilog.core_verilog``.

    Everything lives in ``build_dir`` (e.g. ``build/<name>/sim``): ``core.v``, the cached Verilator
    build, ``stimulus.npz``, ``observed.npz``, logs and ``report.json``. The report (also returned)
    holds ``samples``, ``mismatches``, ``latency_cycles``, ``samples_per_cycle``, counts and times.
    Raises ``LogicforgeError`` (one line, first mismatching sample) unless the run is bit-exact.
    """
    from logicforge.netlist import reference as ref

    say = log or (lambda _msg: None)
    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    (build_dir / "report.json").unlink(missing_ok=True)  # never leave an old verdict behind
    x_test = checked_samples(netlist, x_test, random)

    core = _write_core(netlist, generate, layers_per_stage, build_dir)
    stim_path, obs_path, n_cycles = _write_stimulus(netlist, x_test, random, seed, core,
                                                    reference or ref.evaluate, build_dir)
    say(f"sim: {netlist.num_gates} gates ({core.info.get('gates_after', '?')} after the passes), latency "
        f"{core.latency} cycles; Verilator model in {build_dir} (rebuilt only when core.v changes)")
    result = _simulate(core, stim_path, obs_path, seed, build_dir)
    if result.built:
        say(f"sim: Verilator build took {result.build_seconds:.1f} s")
    verdict = _judge(stim_path, obs_path, result, core.latency, build_dir)

    report = _report(netlist, core, verdict, result, n_test=len(x_test), random=random, cycles=n_cycles,
                     seed=seed)
    return conclude(build_dir, report, verdict, result)


def checked_samples(netlist, x_test, random: int) -> np.ndarray:
    """The checked (n, F) test samples (empty for None); LogicforgeError when there is nothing to run."""
    from logicforge.netlist import reference as ref

    if random < 0:
        raise LogicforgeError(f"--random must be at least 0, got {random}")
    if x_test is None:
        x_test = np.zeros((0, netlist.features), dtype=np.int64)
    x_test = ref.check_features(netlist, x_test)
    if len(x_test) + random == 0:
        raise LogicforgeError("nothing to simulate: no test set and --random 0")
    return x_test


def _write_core(netlist, generate, layers_per_stage, build_dir: Path) -> _Core:
    """Generate the core and write ``core.v`` (only when its text changed, so the build cache holds)."""
    if generate is None:
        from logicforge.hdl.verilog import core_verilog as generate
    start = time.perf_counter()
    verilog, info = generate(netlist, layers_per_stage=layers_per_stage)
    path = build_dir / "core.v"
    if not path.is_file() or path.read_text() != verilog:
        write_text(path, verilog)
    return _Core(verilog, info, path, int(info["latency_cycles"]), time.perf_counter() - start)


def _write_stimulus(netlist, x_test: np.ndarray, random: int, seed: int, core: _Core, reference,
                    build_dir: Path) -> tuple[Path, Path, int]:
    """Draw the random samples and the cycle schedule, compute the expected outputs, and write
    it under a name of this process; return its path, the observation path and the cycle count."""
    from logicforge.netlist import generate as gen
    from logicforge.sim import stimulus as st

    rng = np.random.default_rng(seed)
    x_random = gen.random_features(rng, netlist, random)
    sched = st.make_schedule(len(x_test), random, core.latency, rng,
                             interval=int(core.info.get("sample_interval_cycles", 1)))
    x_all = np.concatenate([x_test, x_random, gen.random_features(rng, netlist, sched.extra)])
    exp_scores, exp_classes = reference(netlist, x_all)
    stim_path, obs_path = handoff_paths(build_dir)
    write_npz(stim_path, compressed_npz=True, features=x_all, feature_width=netlist.feature_width, classes=netlist.classes,
              score_width=int(core.info.get("score_width", netlist.score_width)),
              latency=core.latency, n_test=len(x_test), n_random=random,
              valid=sched.valid, rst=sched.rst, sample=sched.sample,
              streams=np.array(sched.streams, dtype=np.int64).reshape(-1, 2),
              exp_scores=np.asarray(exp_scores, dtype=np.int64),
              exp_classes=np.asarray(exp_classes, dtype=np.int64))
    return stim_path, obs_path, len(sched)


def _simulate(core: _Core, stim_path: Path, obs_path: Path, seed: int, build_dir: Path):
    """Build (cached) and run the cocotb test bench; a failed test is judged by ``_judge``."""
    from logicforge.sim import stimulus as st
    from logicforge.sim.runner import run_cocotb

    return run_cocotb([core.path], CORE_TOPLEVEL, CORE_TEST_MODULE, build_dir,
                      {ENV_STIMULUS: str(stim_path), ENV_OBSERVED: str(obs_path)},
                      public_all=False, public_ports=CORE_PORTS, check=False, seed=seed)


def _judge(stim_path: Path, obs_path: Path, result, latency: int, build_dir: Path) -> dict:
    """``stimulus.check`` of what the test bench observed, with the latency it claimed."""
    from logicforge.sim import stimulus as st

    stim, obs = take_handoff(stim_path, obs_path, result, build_dir)
    verdict = st.check(stim, obs)
    if verdict["latency_measured"] is not None and verdict["latency_measured"] != latency:
        verdict["ok"] = False
    return verdict


def _report(netlist, core: _Core, verdict: dict, result, *, n_test: int, random: int, cycles: int,
            seed: int) -> dict:
    """The contents of ``report.json``."""
    info = core.info
    return {
        "toplevel": CORE_TOPLEVEL,
        "passed": bool(verdict["ok"] and result.ok),
        "samples": verdict["samples"],
        "mismatches": verdict["mismatches"],
        "latency_cycles": verdict["latency_measured"],
        "latency_expected": core.latency,
        "samples_per_cycle": verdict["samples_per_cycle"],
        "test_samples": n_test,
        "random_samples": int(random),
        "reset_phase_samples": verdict["samples"] - (n_test + random - verdict["required_missing"]),
        "required_missing": verdict["required_missing"],
        "valid_errors": verdict["valid_errors"],
        "cycles": cycles,
        "seed": seed,
        "layers_per_stage": info.get("layers_per_stage"),
        "head": info.get("head"),
        "sample_interval_cycles": info.get("sample_interval_cycles", 1),
        "depth": info.get("depth"),
        "gate_stages": info.get("gate_stages"),
        "gates_before": info.get("gates_before", netlist.num_gates),
        "gates": info.get("gates_after", netlist.num_gates),
        "in_width": info.get("in_width"),
        "verilog_sha256": hashlib.sha256(core.verilog.encode()).hexdigest(),
        "build_cached": not result.built,
        "generate_seconds": round(core.seconds, 3),
        "build_seconds": round(result.build_seconds, 3),
        "sim_seconds": round(result.test_seconds, 3),
        "cycles_per_second": round(cycles / result.test_seconds) if result.test_seconds else None,
        "cocotb": {"tests": result.tests, "failures": result.failures, "messages": result.messages},
        "message": verdict["message"],
        "first_mismatch": verdict["first_mismatch"],
        "first_valid_error": verdict["first_valid_error"],
    }
