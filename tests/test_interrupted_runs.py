"""A killed run never hangs or misleads the next one: the C++ kernel cache, `sim` and `synth`.

These tests start the real command line in subprocesses, kill it with SIGKILL or SIGTERM at a
chosen moment (read from its output), and run it again. The kernel tests use a private kernel
cache (``LOGICFORGE_KERNEL_CACHE``), so they compile the kernel for real: about a minute each.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from logicforge.netlist.generate import random_netlist

WAIT = 900  # seconds: a kernel build or a synthesis on a busy 2-core machine


class Command:
    """``python -m logicforge ARGS`` in a subprocess whose merged output is read line by line."""

    def __init__(self, args, *, env, cwd):
        self.proc = subprocess.Popen([sys.executable, "-m", "logicforge", *args], cwd=cwd, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float = WAIT) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if any(text in line for line in self.lines):
                return
            if self.proc.poll() is not None:
                self._reader.join(5)
                if any(text in line for line in self.lines):
                    return
                raise AssertionError(f"exited ({self.proc.returncode}) before printing {text!r}:\n{self.output}")
            time.sleep(0.05)
        self.proc.kill()
        raise AssertionError(f"no {text!r} within {timeout} s:\n{self.output}")

    def interrupt(self, sig: int, settle: float = 1.0) -> None:
        """Let the current step run ``settle`` seconds more, check it is still running, then ``kill``."""
        time.sleep(settle)
        assert self.proc.poll() is None, f"finished before it could be interrupted:\n{self.output}"
        self.kill(sig)

    def kill(self, sig: int) -> None:
        self.proc.send_signal(sig)
        self.proc.wait(60)
        self._reader.join(5)
        assert self.proc.returncode == -sig, self.output

    def finish(self, timeout: float = WAIT) -> int:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"still running after {timeout} s (a hang?):\n{self.output}") from None
        self._reader.join(5)
        return self.proc.returncode


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("LOGICFORGE_NO_CPP", "LOGICFORGE_KERNEL_WAIT")}
    env.update(PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", **extra)
    return env


TRAIN = ["train", "--epochs", "1", "--layers", "2", "--width", "120", "--quiet"]
BUILDING = "building the C++ logic-layer kernel"


def _kernel_path(env) -> Path:
    out = subprocess.run([sys.executable, "-m", "logicforge", "kernel", "--path"], env=env,
                         capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


@pytest.mark.slow
def test_killed_kernel_builds_then_two_runs_at_once(tmp_path):
    """SIGKILL, then SIGTERM, as the kernel build starts; then two trainings start together.

    Both finish; exactly one of them compiles, the other waits for it (and says so) or loads it.
    """
    env = _env(LOGICFORGE_KERNEL_CACHE=str(tmp_path / "cache"))
    for sig in (signal.SIGKILL, signal.SIGTERM):
        cmd = Command([*TRAIN, "--runs-dir", "runs"], env=env, cwd=tmp_path)
        cmd.wait_for(BUILDING)
        cmd.kill(sig)
    lib = _kernel_path(env)
    assert not lib.exists()  # nothing half-built at the place that is loaded without a lock

    a = Command([*TRAIN, "--runs-dir", "runs_a"], env=env, cwd=tmp_path)
    b = Command([*TRAIN, "--runs-dir", "runs_b"], env=env, cwd=tmp_path)
    assert a.finish() == 0, a.output
    assert b.finish() == 0, b.output
    builds = [c for c in (a, b) if BUILDING in c.output]
    assert len(builds) == 1, a.output + "\n----\n" + b.output
    other = b if builds[0] is a else a
    assert "waiting for the C++ kernel build by pid" in other.output or BUILDING not in other.output
    # The build that got the lock found the killed build's name in it and said so, in one line.
    assert "was interrupted; taking over its lock" in builds[0].output
    for run in ("runs_a", "runs_b"):
        assert (tmp_path / run / "default" / "netlist.json").is_file()
    assert lib.is_file()
    assert not list(lib.parent.glob("build-*"))  # the killed builds' folders are gone

    # Loaded from the cache: no build, no wait, no note.
    c = Command([*TRAIN, "--runs-dir", "runs_c"], env=env, cwd=tmp_path)
    assert c.finish() == 0, c.output
    assert "C++" not in c.output


@pytest.mark.slow
def test_stale_lock_and_broken_kernel_are_recovered(tmp_path):
    """A lock naming a dead process, a leftover build folder and an unloadable library, by hand."""
    env = _env(LOGICFORGE_KERNEL_CACHE=str(tmp_path / "cache"))
    lib = _kernel_path(env)
    lib.parent.mkdir(parents=True)
    lib.write_bytes(b"\x7fELF half a library")
    (lib.parent / "build-elsewhere-12345").mkdir()
    (lib.parent / "build-elsewhere-12345" / "cpu_kernel.o").write_bytes(b"junk")
    lock = lib.parent.parent / f"{lib.parent.name}.lock"
    lock.write_text("pid 12345 on elsewhere")

    cmd = Command([*TRAIN, "--runs-dir", "runs"], env=env, cwd=tmp_path)
    assert cmd.finish() == 0, cmd.output
    notes = [l for l in cmd.lines if l.startswith("logicforge: ")]
    assert any("cannot be loaded" in l and "rebuilding it" in l for l in notes), cmd.output
    assert any("pid 12345 on elsewhere" in l and "interrupted" in l for l in notes), cmd.output
    assert any("removing the leftover" in l for l in notes), cmd.output
    assert not (lib.parent / "build-elsewhere-12345").exists()
    assert lock.read_text() == ""  # released cleanly
    assert (tmp_path / "runs" / "default" / "netlist.json").is_file()


def test_wait_for_a_held_lock_is_bounded_and_names_it(tmp_path):
    """A live holder (this test) keeps the lock: the loader waits, says for whom, then gives up."""
    env = _env(LOGICFORGE_KERNEL_CACHE=str(tmp_path / "cache"), LOGICFORGE_KERNEL_WAIT="2")
    lib = _kernel_path(env)
    lock = lib.parent.parent / f"{lib.parent.name}.lock"
    lock.parent.mkdir(parents=True)
    with open(lock, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.write("pid 777 on testhost")
        fh.flush()
        start = time.monotonic()
        out = subprocess.run([sys.executable, "-m", "logicforge", "kernel"], env=env, cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
        waited = time.monotonic() - start
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 2, out.stderr  # one note while waiting, one error when giving up
    assert "waiting for the C++ kernel build by pid 777 on testhost" in lines[0] and str(lock) in lines[0]
    assert lines[1].startswith("logicforge kernel: error: gave up after") and str(lock) in lines[1]
    assert "Traceback" not in out.stderr
    assert waited >= 2
    assert not lib.exists()


# -- sim and synth -----------------------------------------------------------------------------

def _small_netlist(tmp_path) -> Path:
    net = random_netlist(np.random.default_rng(12), features=5, layer_widths=(40, 30), classes=3,
                         group_size=4)
    path = tmp_path / "net.json"
    net.save(path)
    return path


@pytest.mark.slow
@pytest.mark.verilator
def test_killed_sim_then_rerun(tmp_path):
    """SIGTERM and then SIGKILL while Verilator builds; the next `sim` builds afresh and passes."""
    netlist = _small_netlist(tmp_path)
    env = _env()
    sim_dir = tmp_path / "build" / "net" / "sim"
    args = ["sim", "--netlist", str(netlist), "--random", "300"]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        cmd = Command(args, env=env, cwd=tmp_path)
        cmd.wait_for("Verilator model in")
        end = time.monotonic() + 120
        while not any(sim_dir.glob("obj-build-*/*")) and time.monotonic() < end:
            time.sleep(0.05)
        cmd.interrupt(sig)  # well inside the build
        assert not (sim_dir / "obj").exists()  # the half-built model is not where builds are reused
    again = Command(args, env=env, cwd=tmp_path)
    assert again.finish() == 0, again.output
    assert "parity: " in again.output and "bit-exact" in again.output
    assert not list(sim_dir.glob("obj-build-*"))  # leftovers of the killed builds removed
    report = (sim_dir / "report.json").read_text()
    assert '"passed": true' in report


@pytest.mark.slow
@pytest.mark.synth
def test_killed_synth_then_bitstream(tmp_path):
    """SIGTERM in yosys and SIGKILL in nextpnr; `bitstream` then synthesises again, never reusing."""
    netlist = _small_netlist(tmp_path)
    env = _env()
    out = tmp_path / "build" / "net" / "icebreaker"
    for sig, moment in ((signal.SIGTERM, "synth: yosys"), (signal.SIGKILL, "synth: nextpnr-ice40")):
        cmd = Command(["synth", "--board", "icebreaker", "--netlist", str(netlist)], env=env, cwd=tmp_path)
        cmd.wait_for(moment)
        cmd.interrupt(sig)
        assert not (out / "synth.json").exists()
        if sig == signal.SIGKILL:
            # The tool dies with its parent instead of writing on into the next run's folder.
            time.sleep(1.0)
            leftovers = subprocess.run(["pgrep", "-f", "nextpnr-ice40"], capture_output=True, text=True)
            mine = [p for p in leftovers.stdout.split() if _cwd(p) == out]
            assert not mine, f"nextpnr still running after its parent was killed: {mine}"
    again = Command(["bitstream", "--board", "icebreaker", "--netlist", str(netlist)], env=env, cwd=tmp_path)
    assert again.finish() == 0, again.output
    assert "reusing" not in again.output
    assert (out / "top.bin").stat().st_size > 1000
    assert '"fits": true' in (out / "synth.json").read_text()


def _cwd(pid: str) -> Path | None:
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return None
