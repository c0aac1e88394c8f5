"""Build Verilog with Verilator and run cocotb tests on it; the streaming parity check of the core.

``run_cocotb`` is the generic part (any sources, top level and cocotb test module): it caches the
Verilator build by content hash, runs the test, and reads cocotb's results file, so a failing cocotb
test is a failure here too. ``run_parity`` generates ``logicnet_core`` for a netlist, streams the
test set and random feature vectors through it one per clock, and compares every output with the
reference evaluator on the original netlist (see ``logicforge.sim.stimulus`` for the schedule and the
rules). Both raise ``LogicforgeError`` with one line when something fails.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from logicforge.errors import LogicforgeError
from logicforge.fileio import atomic_path, private_name, remove_dead, write_json, write_text

#: The cocotb test module that streams the parity schedule through ``logicnet_core``.
CORE_TEST_MODULE = "logicforge.sim.core_tb"
CORE_TOPLEVEL = "logicnet_core"
CORE_PORTS = ("clk", "rst", "in_valid", "in_data", "out_valid", "out_class", "out_scores")

#: Verilator options. The generated designs are wide, flat and warning-prone (unused bits).
DEFAULT_BUILD_ARGS = ("-Wno-fatal", "-Wno-lint", "-Wno-style", "-O3", "--x-assign", "fast",
                      "--x-initial", "fast")
#: C++ optimisation of Verilator's generated model. Most of the run time is Python driving the
#: clock, not the model, and -O1 compiles a flat gate netlist far faster than the default -Os.
DEFAULT_CXX_OPT = "-O1"
TIMESCALE = ("1ns", "1ps")


@dataclass
class CocotbResult:
    """What ``run_cocotb`` did: the build (cached or not) and cocotb's test results."""

    results_xml: Path
    tests: int
    failures: int
    messages: list[str] = field(default_factory=list)
    built: bool = False
    build_seconds: float = 0.0
    test_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.tests > 0 and self.failures == 0


# -- generic Verilator + cocotb ------------------------------------------------------------------

def public_ports_file(path: Path, toplevel: str, ports: Iterable[str]) -> Path:
    """Write a Verilator control file that makes only ``toplevel``'s ``ports`` visible to cocotb.

    Used with ``public_all=False`` in ``run_cocotb``: without it, cocotb's runner passes
    ``--public-flat-rw``, which keeps every internal wire of a big netlist alive in the model.
    """
    lines = ["`verilator_config"]
    lines += [f'public_flat_rw -module "{toplevel}" -var "{p}"' for p in ports]
    text = "\n".join(lines) + "\n"
    if not path.exists() or path.read_text() != text:
        write_text(path, text)
    return path


def _build_hash(sources: Sequence[Path], toplevel: str, build_args: Sequence[str], extra: str) -> str:
    import cocotb

    from logicforge.sim.verilator import verilator_root

    h = hashlib.sha256()
    h.update(json.dumps([toplevel, list(build_args), extra, str(verilator_root()), cocotb.__version__,
                         sys.version]).encode())
    for s in sources:
        h.update(str(s).encode() + b"\0" + s.read_bytes() + b"\0")
    return h.hexdigest()


@contextlib.contextmanager
def _environ(updates: Mapping[str, str]):
    old = {k: os.environ.get(k) for k in updates}
    os.environ.update(updates)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _tail(path: Path, lines: int = 1) -> str:
    try:
        text = [l.strip() for l in path.read_text(errors="replace").splitlines() if l.strip()]
    except OSError:
        return ""
    errors = [l for l in text if "%Error" in l or "error:" in l.lower()]
    return " | ".join((errors or text)[-lines:])[:300]


def _read_results(xml: Path) -> tuple[int, int, list[str]]:
    """(tests, failures + errors, failure messages) from cocotb's xUnit results file."""
    if not xml.is_file():
        raise LogicforgeError(f"the simulation ended without writing {xml} (crashed?)")
    root = ElementTree.parse(xml).getroot()
    tests = failed = 0
    messages = []
    for suite in root.iter("testsuite"):
        for case in suite.iter("testcase"):
            tests += 1
            bad = case.findall("failure") + case.findall("error")
            if bad:
                failed += 1
                msg = bad[0].get("message") or (bad[0].text or "").strip() or "failed"
                messages.append(f"{case.get('name')}: {msg.splitlines()[0] if msg else 'failed'}")
    return tests, failed, messages


def build(sources: Sequence[str | os.PathLike], toplevel: str, build_dir: str | os.PathLike, *,
          build_args: Sequence[str] = DEFAULT_BUILD_ARGS, cxx_opt: str = DEFAULT_CXX_OPT,
          public_all: bool = True, public_ports: Iterable[str] | None = None) -> tuple[bool, float]:
    """Verilate and compile ``sources`` into ``build_dir/obj`` unless an identical build is there.

    The build is skipped when a hash of the source contents, top level, options and tool versions
    matches the one stored by the last successful build. With ``public_all=False`` only the
    ``public_ports`` of ``toplevel`` are accessible from cocotb (a generated control file), which
    lets Verilator optimise the internal wires. Returns (built, seconds). Log: ``build_dir/build.log``.
    """
    from logicforge.sim.verilator import get_runner

    build_dir = Path(build_dir).resolve()
    obj = build_dir / "obj"
    srcs = [Path(s).resolve() for s in sources]
    for s in srcs:
        if not s.is_file():
            raise LogicforgeError(f"{s}: no such HDL source")
    if not public_all:
        if public_ports is None:
            raise LogicforgeError("build(public_all=False) needs the list of public_ports")
        srcs.append(public_ports_file(build_dir / "ports.vlt", toplevel, public_ports))
    stamp = obj / "build.sha256"
    digest = _build_hash(srcs, toplevel, build_args, f"{cxx_opt} public_all={public_all}")
    if (obj / toplevel).is_file() and stamp.is_file() and stamp.read_text().strip() == digest:
        return False, 0.0
    remove_dead(build_dir, "obj-old")

    runner = get_runner()
    if not public_all:
        runner._build_command = _without_public_flat(runner._build_command)
    from cocotb_tools.runner import VerilatorControlFile

    hdl = [VerilatorControlFile(s) if s.suffix == ".vlt" else s for s in srcs]
    makeflags = (f"{os.environ.get('MAKEFLAGS', '')} OPT_FAST={cxx_opt} OPT_SLOW={cxx_opt} "
                 f"OPT_GLOBAL={cxx_opt}").strip()
    log = build_dir / "build.log"
    # Build in a private folder and swap it in when complete: a killed build (whose make and
    # compilers may run on as orphans) never shares a folder with the next one, and no half-built
    # model is ever found at obj/. Leftovers of dead builds are removed first.
    remove_dead(build_dir, "obj-build")
    tmp = build_dir / private_name("obj-build")
    shutil.rmtree(tmp, ignore_errors=True)
    start = time.perf_counter()
    try:
        with _environ({"MAKEFLAGS": makeflags}):
            runner.build(sources=hdl, hdl_toplevel=toplevel, build_dir=tmp, build_args=list(build_args),
                         timescale=TIMESCALE, log_file=log)
    except (RuntimeError, SystemExit, OSError) as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise LogicforgeError(f"Verilator build of {toplevel} failed ({_tail(log) or e}); "
                              f"full log: {log}") from None
    seconds = time.perf_counter() - start
    write_text(tmp / stamp.name, digest + "\n")
    old = build_dir / private_name("obj-old")
    if obj.exists():
        os.rename(obj, old)
    os.rename(tmp, obj)
    shutil.rmtree(old, ignore_errors=True)
    return True, seconds


def _without_public_flat(build_command: Callable[[], list]) -> Callable[[], list]:
    """Wrap the Verilator runner's command builder to drop ``--public-flat-rw`` (cocotb 2.1)."""
    def wrapped():
        cmds = build_command()
        cmds[0] = [a for a in cmds[0] if a != "--public-flat-rw"]
        return cmds
    return wrapped


def run_cocotb(sources: Sequence[str | os.PathLike], toplevel: str, test_module: str,
               build_dir: str | os.PathLike, extra_env: Mapping[str, str] | None = None, *,
               build_args: Sequence[str] = DEFAULT_BUILD_ARGS, public_all: bool = True,
               public_ports: Iterable[str] | None = None, check: bool = True,
               seed: int | None = None) -> CocotbResult:
    """Build ``sources`` (cached, see ``build``) and run the cocotb ``test_module`` on ``toplevel``.

    ``extra_env`` reaches the test process (pass file paths to the test this way). The results file
    is ``build_dir/results.xml`` and the simulator's output goes to ``build_dir/test.log``. With
    ``check=True`` a failed or missing cocotb test raises ``LogicforgeError``; otherwise inspect the
    returned ``CocotbResult``.
    """
    from logicforge.sim.verilator import get_runner

    build_dir = Path(build_dir).resolve()
    built, build_seconds = build(sources, toplevel, build_dir, build_args=build_args,
                                 public_all=public_all, public_ports=public_ports)
    runner = get_runner()
    # This run's own results file: a simulator left running by a killed run cannot write into it.
    xml, final_xml = build_dir / private_name("results"), build_dir / "results.xml"
    remove_dead(build_dir, "results")
    log = build_dir / "test.log"
    final_xml.unlink(missing_ok=True)
    start = time.perf_counter()
    try:
        runner.test(test_module=test_module, hdl_toplevel=toplevel, hdl_toplevel_lang="verilog",
                    build_dir=build_dir / "obj",
                    test_dir=build_dir, results_xml=str(xml), extra_env=dict(extra_env or {}),
                    log_file=log, seed=seed, timescale=TIMESCALE)
    except SystemExit:
        pass  # the runner exits on simulator failure (and under pytest on failed tests): read the xml
    except RuntimeError as e:
        raise LogicforgeError(f"cocotb run of {test_module} failed to start ({e}); see {log}") from None
    test_seconds = time.perf_counter() - start
    try:
        tests, failures, messages = _read_results(xml)
    except LogicforgeError as e:
        raise LogicforgeError(f"{e}; last output: {_tail(log)}; see {log}") from None
    os.replace(xml, final_xml)
    result = CocotbResult(final_xml, tests, failures, messages, built, build_seconds, test_seconds)
    if check and not result.ok:
        what = messages[0] if messages else "no test ran"
        raise LogicforgeError(f"cocotb {test_module}: {failures} of {tests} tests failed: {what}; see {log}")
    return result


# -- the parity check of logicnet_core -----------------------------------------------------------

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
    from logicforge.netlist import generate as gen
    from logicforge.netlist import reference as ref
    from logicforge.sim import stimulus as st

    say = log or (lambda _msg: None)
    if generate is None:
        from logicforge.hdl.verilog import core_verilog as generate
    reference = reference or ref.evaluate
    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    (build_dir / "report.json").unlink(missing_ok=True)  # never leave an old verdict behind
    if random < 0:
        raise LogicforgeError(f"--random must be >= 0, got {random}")
    if x_test is None:
        x_test = np.zeros((0, netlist.features), dtype=np.int64)
    x_test = ref.check_features(netlist, x_test)
    if len(x_test) + random == 0:
        raise LogicforgeError("nothing to simulate: no test set and --random 0")

    start = time.perf_counter()
    verilog, info = generate(netlist, layers_per_stage=layers_per_stage)
    latency = int(info["latency_cycles"])
    score_width = int(info.get("score_width", netlist.score_width))
    core = build_dir / "core.v"
    if not core.is_file() or core.read_text() != verilog:
        write_text(core, verilog)
    generate_seconds = time.perf_counter() - start

    rng = np.random.default_rng(seed)
    x_random = gen.random_features(rng, netlist, random)
    sched = st.make_schedule(len(x_test), random, latency, rng)
    x_all = np.concatenate([x_test, x_random, gen.random_features(rng, netlist, sched.extra)])
    exp_scores, exp_classes = reference(netlist, x_all)
    # This run's own stimulus and observation files (see run_cocotb): renamed to their usual names
    # once read, so a simulator left by a killed run can never feed this run its results.
    remove_dead(build_dir, "stimulus")
    remove_dead(build_dir, "observed")
    stim_path = build_dir / (private_name("stimulus") + ".npz")
    obs_path = build_dir / (private_name("observed") + ".npz")
    with atomic_path(stim_path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, features=x_all, feature_width=netlist.feature_width, classes=netlist.classes,
                     score_width=score_width, latency=latency, n_test=len(x_test), n_random=random,
                     valid=sched.valid, rst=sched.rst, sample=sched.sample,
                     streams=np.array(sched.streams, dtype=np.int64).reshape(-1, 2),
                     exp_scores=np.asarray(exp_scores, dtype=np.int64),
                     exp_classes=np.asarray(exp_classes, dtype=np.int64))
    obs_path.unlink(missing_ok=True)

    say(f"sim: {netlist.num_gates} gates ({info.get('gates_after', '?')} after the passes), latency "
        f"{latency} cycles; Verilator model in {build_dir} (rebuilt only when core.v changes)")
    result = run_cocotb([core], CORE_TOPLEVEL, CORE_TEST_MODULE, build_dir,
                        {st.ENV_STIMULUS: str(stim_path), st.ENV_OBSERVED: str(obs_path)},
                        public_all=False, public_ports=CORE_PORTS, check=False, seed=seed)
    if result.built:
        say(f"sim: Verilator build took {result.build_seconds:.1f} s")

    if not obs_path.is_file():
        why = result.messages[0] if result.messages else "no observations written"
        raise LogicforgeError(f"the cocotb test bench did not finish: {why}; see {build_dir / 'test.log'}")
    with np.load(stim_path, allow_pickle=False) as f:
        stim = {k: f[k] for k in f.files}
    with np.load(obs_path, allow_pickle=False) as f:
        obs = {k: f[k] for k in f.files}
    os.replace(stim_path, build_dir / "stimulus.npz")
    os.replace(obs_path, build_dir / "observed.npz")
    verdict = st.check(stim, obs)
    if verdict["latency_measured"] is not None and verdict["latency_measured"] != latency:
        verdict["ok"] = False

    n_test = len(x_test)
    report = {
        "toplevel": CORE_TOPLEVEL,
        "passed": bool(verdict["ok"] and result.ok),
        "samples": verdict["samples"],
        "mismatches": verdict["mismatches"],
        "latency_cycles": verdict["latency_measured"],
        "latency_expected": latency,
        "samples_per_cycle": verdict["samples_per_cycle"],
        "test_samples": n_test,
        "random_samples": int(random),
        "reset_phase_samples": verdict["samples"] - (n_test + random - verdict["required_missing"]),
        "required_missing": verdict["required_missing"],
        "valid_errors": verdict["valid_errors"],
        "cycles": len(sched),
        "seed": seed,
        "layers_per_stage": info.get("layers_per_stage"),
        "depth": info.get("depth"),
        "gate_stages": info.get("gate_stages"),
        "gates_before": info.get("gates_before", netlist.num_gates),
        "gates": info.get("gates_after", netlist.num_gates),
        "in_width": info.get("in_width"),
        "verilog_sha256": hashlib.sha256(verilog.encode()).hexdigest(),
        "build_cached": not result.built,
        "generate_seconds": round(generate_seconds, 3),
        "build_seconds": round(result.build_seconds, 3),
        "sim_seconds": round(result.test_seconds, 3),
        "cycles_per_second": round(len(sched) / result.test_seconds) if result.test_seconds else None,
        "cocotb": {"tests": result.tests, "failures": result.failures, "messages": result.messages},
        "message": verdict["message"],
        "first_mismatch": verdict["first_mismatch"],
        "first_valid_error": verdict["first_valid_error"],
    }
    write_json(build_dir / "report.json", report)
    if not verdict["ok"]:
        raise LogicforgeError(f"{verdict['message']} (report: {build_dir / 'report.json'})")
    if not result.ok:
        what = result.messages[0] if result.messages else "no test ran"
        raise LogicforgeError(f"cocotb test failed although the outputs match: {what}; "
                              f"see {build_dir / 'test.log'}")
    return report
