"""The fused C++ kernel for the logic layer on the CPU: built once, then loaded without locks.

Where it lives: ``<cache>/<key>/logicforge_cpu_kernel.so``, with ``<cache>`` the environment variable
``LOGICFORGE_KERNEL_CACHE``, else ``$XDG_CACHE_HOME/logicforge/kernels`` (``~/.cache/...``). The
``<key>`` is a hash of everything the binary depends on: ``cpu_kernel.cpp``, the compiler flags, the
torch and Python versions and the CPU (the build uses ``-march=native``). ``make setup`` builds it;
``logicforge kernel`` says where it is and ``logicforge kernel --rebuild`` builds it again.

The contract, for jobs that share a home directory:

- **Loading** a built kernel is one ``import`` of that file: no lock, no compiler, no ninja.
- **Building** happens only when no usable library matches the key. It takes an OS-level lock
  (``fcntl.flock`` on ``<cache>/<key>.lock``), which dies with its holder, so a killed build never
  blocks the next run. The holder writes its PID and host into the lock file; a waiter prints them
  with the lock's path and gives up with a one-line error after ``LOGICFORGE_KERNEL_WAIT`` seconds
  (default 900). Whoever gets the lock first checks again, so concurrent runs build once.
- The build runs in a private temporary folder and the library appears at its final path in one
  ``os.replace``: a half-built kernel is never loaded. Leftovers of a killed build (its temporary
  folder, the PID it left in the lock, an unloadable library) are cleaned up with a one-line note.

Where no compiler is available the trainer falls back to the plain PyTorch path, with a warning.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import functools
import hashlib
import importlib.util
import os
import platform
import shutil
import socket
import sys
import sysconfig
import time
import warnings
from pathlib import Path

from logicforge.errors import LogicforgeError
from logicforge.fileio import private_name

SOURCE = Path(__file__).with_name("cpu_kernel.cpp")
NAME = "logicforge_cpu_kernel"
#: -fopenmp makes at::parallel_for (an OpenMP pragma in PyTorch's headers) run on torch's threads; without
#: it the kernels ran on one thread whatever torch.set_num_threads said. The extension links libgomp.so.1,
#: which resolves to the copy torch has already loaded, so there is one OpenMP runtime in the process.
CFLAGS = ("-O3", "-march=native", "-fopenmp")
LDFLAGS = ("-fopenmp",)
DEFAULT_WAIT_SECONDS = 900.0


def note(message: str) -> None:
    print(f"logicforge: {message}", file=sys.stderr, flush=True)


def keep_freed_memory() -> None:
    """Ask glibc to serve a training step's multi-megabyte buffers from the heap and keep them after free.

    Called by the trainer on the CPU (every backend) and by every CPU timing run of ``make bench``.

    By default each large tensor is a fresh mmap, so every training step page-faults (and zeroes) all
    of its activations again; with a 32 MB mmap threshold and a 1 GB trim threshold the buffers are
    reused. Measured on 6 x 8000 gates, batch 256, 1 thread: about 42 ms per step against 83 ms.
    A no-op where the C library is not glibc, or where ``GLIBC_TUNABLES`` already sets malloc
    thresholds (the benchmark's memory run does, so that freed tensors leave the resident set).
    """
    if "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass


# -- where the kernel lives -----------------------------------------------------------------------

def cache_dir() -> Path:
    """The folder that holds one sub-folder per built kernel key."""
    if os.environ.get("LOGICFORGE_KERNEL_CACHE"):
        return Path(os.environ["LOGICFORGE_KERNEL_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "logicforge" / "kernels"


def _cpu_identity() -> str:
    """The CPU model and feature flags: a ``-march=native`` binary is only valid on a CPU like this."""
    try:
        with open("/proc/cpuinfo") as fh:
            lines = fh.read().split("\n\n", 1)[0].splitlines()
    except OSError:
        return platform.processor() or platform.machine()
    keep = ("model name", "flags", "Features", "CPU implementer", "CPU part")
    return "\n".join(line for line in lines if line.split(":", 1)[0].strip() in keep)


def key() -> str:
    """A short hash of the source, flags, torch, Python and CPU: the name of the kernel's folder."""
    import torch

    h = hashlib.sha256()
    for part in (SOURCE.read_bytes(), repr((CFLAGS, LDFLAGS)).encode(), torch.__version__.encode(),
                 str(sysconfig.get_config_var("EXT_SUFFIX")).encode(), sys.version.encode(),
                 platform.machine().encode(), _cpu_identity().encode()):
        h.update(part + b"\0")
    return h.hexdigest()[:16]


def library_path() -> Path:
    """Where the built library for this source, machine and torch is (or will be)."""
    return cache_dir() / key() / f"{NAME}{sysconfig.get_config_var('EXT_SUFFIX') or '.so'}"


def _lock_path() -> Path:
    return cache_dir() / f"{key()}.lock"


# -- loading and building -----------------------------------------------------------------------

def _import(path: Path):
    """Import the extension module at ``path`` (plain ``import``: no lock, no build tool)."""
    import torch  # noqa: F401  (the extension links against libtorch, which must be loaded first)

    spec = importlib.util.spec_from_file_location(NAME, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _try_import(path: Path):
    """The module at ``path``, or None (after a note and removing the file) if it is unusable."""
    if not path.is_file():
        return None
    try:
        return _import(path)
    except ImportError as e:
        note(f"the cached C++ kernel {path} cannot be loaded ({str(e).splitlines()[0][:160]}); rebuilding it")
        with contextlib.suppress(OSError):
            path.unlink()
        return None


def _holder(lock: Path) -> str:
    """Who holds ``lock``, as its holder wrote it ("pid N on HOST"), or "" if unknown."""
    try:
        return lock.read_text().strip()
    except OSError:
        return ""


@contextlib.contextmanager
def _build_lock(lock: Path, wait_seconds: float):
    """Hold the OS-level lock ``lock``; wait for another holder at most ``wait_seconds``.

    The lock is ``flock``: the kernel releases it when the holder exits, however it exits. The file's
    text names the holder while it builds and is emptied on release, so text found by a new holder
    means an earlier build was killed.
    """
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        start = time.monotonic()
        waiting = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
            waited = time.monotonic() - start
            if waited >= wait_seconds:
                raise LogicforgeError(
                    f"gave up after {waited:.0f} s waiting for the C++ kernel build by "
                    f"{_holder(lock) or 'another process'} (lock: {lock}); set LOGICFORGE_KERNEL_WAIT "
                    f"to wait longer, or LOGICFORGE_NO_CPP=1 to train with plain PyTorch")
            if not waiting:
                note(f"waiting for the C++ kernel build by {_holder(lock) or 'another process'} "
                     f"(lock: {lock}; giving up after {wait_seconds:.0f} s)")
                waiting = True
            time.sleep(0.2)
        previous = os.pread(fd, 4096, 0).decode(errors="replace").strip()
        if previous:
            note(f"an earlier C++ kernel build ({previous}) was interrupted; taking over its lock {lock}")
        me = f"pid {os.getpid()} on {socket.gethostname()}".encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, me, 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _remove_leftovers(folder: Path) -> None:
    """Delete temporary build folders that a killed build left in ``folder`` (we hold its lock)."""
    for tmp in folder.glob("build-*"):
        note(f"removing the leftover of an interrupted C++ kernel build: {tmp}")
        shutil.rmtree(tmp, ignore_errors=True)


def _build(path: Path):
    """Compile the extension in a private folder and move the library to ``path`` atomically."""
    from torch.utils import cpp_extension

    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(folder)
    tmp = folder / private_name("build")
    tmp.mkdir()
    note(f"building the C++ logic-layer kernel into {folder} (once per machine and torch version; "
         f"about a minute)")
    try:
        mod = cpp_extension.load(name=NAME, sources=[str(SOURCE)], extra_cflags=list(CFLAGS),
                                 extra_ldflags=list(LDFLAGS),
                                 build_directory=str(tmp), verbose=False)
        built = Path(mod.__file__)
        os.replace(built, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return mod


def load(*, rebuild: bool = False, wait_seconds: float | None = None):
    """Load the kernel, building it first if no usable library matches (see the module docstring).

    Raises ``LogicforgeError`` if another process holds the build lock for longer than
    ``wait_seconds`` (default ``LOGICFORGE_KERNEL_WAIT`` or 900 s); build errors propagate.
    """
    if wait_seconds is None:
        try:
            wait_seconds = float(os.environ.get("LOGICFORGE_KERNEL_WAIT", DEFAULT_WAIT_SECONDS))
        except ValueError:
            raise LogicforgeError("LOGICFORGE_KERNEL_WAIT must be a number of seconds") from None
    path = library_path()
    if not rebuild:
        mod = _try_import(path)
        if mod is not None:
            return mod
    with _build_lock(_lock_path(), wait_seconds):
        if not rebuild:
            mod = _try_import(path)  # another process may have built it while we waited
            if mod is not None:
                return mod
        return _build(path)


@functools.cache
def module():
    """The compiled extension, or None if it cannot be built here (no compiler, build error)."""
    if os.environ.get("LOGICFORGE_NO_CPP"):
        return None
    keep_freed_memory()
    try:
        return load()
    except LogicforgeError:
        raise
    except Exception as e:  # no compiler, no ninja, build error: fall back to PyTorch
        warnings.warn(f"C++ logic-layer kernel unavailable, using plain PyTorch ({e.__class__.__name__}: "
                      f"{str(e).splitlines()[0] if str(e) else ''})")
        return None


def available() -> bool:
    return module() is not None


def forward(x, ia, ib, coef):
    return module().forward(x, ia, ib, coef.contiguous())


def backward(x, ia, ib, coef, g, *, need_gx=True):
    """(gx or None, gcoef) over real-valued x; with ``need_gx`` False only gcoef is computed."""
    gx, gcoef = module().backward(x, ia, ib, coef.contiguous(), g, need_gx)
    return (gx if need_gx else None), gcoef


def backward_bits(packed, n, ia, ib, coef, g, *, need_gx=True):
    """Backward from the input saved as bits (``pack_bits``, ``n`` samples): (gx or None, gcoef).

    Same result as ``backward(unpack_bits(packed, n), ...)`` without unpacking; with ``need_gx``
    False (the network's input needs no gradient) only gcoef is computed.
    """
    gx, gcoef = module().backward_bits(packed, n, ia, ib, coef.contiguous(), g, need_gx)
    return (gx if need_gx else None), gcoef


# -- gate coefficients, Gumbel noise and the whole-network packed pass (gumbel mode) ---------------

def gumbel_noise(rows, k1, k2, *, fast_log=True):
    """Standard Gumbel samples [rows, 16] of ``functional.hashed_gumbel`` for the key (k1, k2).

    ``fast_log``: a short polynomial log (about 1 ulp) instead of SLEEF's; either rounds the last bit
    differently from ``torch.log`` now and then.
    """
    return module().gumbel_noise(rows, k1, k2, fast_log)


def gumbel_coef(logits, noise, temperature, coeffs):
    """(coeffs[argmax(logits + noise)], softmax((logits + noise) / temperature))."""
    return module().gumbel_coef(logits.contiguous(), noise.contiguous(), float(temperature), coeffs.contiguous())


def softmax_coef(logits, coeffs):
    """(softmax(logits) @ coeffs, softmax(logits))."""
    return module().softmax_coef(logits.contiguous(), coeffs.contiguous())


def coef_backward(grad_coef, soft, temperature, coeffs):
    """dL/dlogits = soft * (gw - sum(soft * gw)) / temperature with gw = grad_coef @ coeffs.T."""
    return module().coef_backward(grad_coef.contiguous(), soft, float(temperature), coeffs.contiguous())


def net_forward_bits(x, ia, ib, coef, classes, tau):
    """Whole-network forward on packed bits: (scores [B, classes], packed input of every layer)."""
    out = module().net_forward_bits(x.contiguous(), list(ia), list(ib), [c.contiguous() for c in coef],
                                    classes, float(tau))
    return out[0], out[1:]


def net_backward_bits(bits, ia, ib, coef, gs, batch, prefetch=2):
    """dL/dcoef of every layer from the saved bits and gs = (dL/dscores / tau)^T [classes, B].

    ``prefetch``: how many consumers ahead the gather loop prefetches gradient rows (0: none).
    """
    return module().net_backward_bits(list(bits), list(ia), list(ib), [c.contiguous() for c in coef],
                                      gs.contiguous(), batch, prefetch)
