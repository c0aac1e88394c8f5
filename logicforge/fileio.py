"""Atomic writes: a result file is either the old one or the complete new one, never half written."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed over ``path``.

    Whatever the body writes to the temporary path appears at ``path`` in one ``os.replace``.
    If the body raises, the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj, indent: int | None = 2) -> None:
    write_text(path, json.dumps(obj, indent=indent) + "\n")


def write_npz(path: str | os.PathLike, *, compressed_npz: bool = False, **arrays) -> None:
    """Write numpy arrays (and scalars) to an ``.npz`` archive (uncompressed unless
    ``compressed_npz``), atomically."""
    import numpy as np

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            (np.savez_compressed if compressed_npz else np.savez)(fh, **arrays)


def load_array(path: str | os.PathLike):
    """Load one ``.npy`` array without unpickling; a missing or bad file is a one-line error."""
    import numpy as np

    from logicforge.errors import LogicforgeError

    try:
        x = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise LogicforgeError(f"{path}: no such file") from None
    except (ValueError, OSError, EOFError, MemoryError) as e:  # EOFError: empty or truncated file
        raise LogicforgeError(f"{path}: not a readable .npy array ({e.__class__.__name__}: {e})") from None
    if not isinstance(x, np.ndarray):
        x.close()
        raise LogicforgeError(f"{path}: expected a single .npy array, not an archive")
    return x


# -- private work folders and child processes: a killed run leaves nothing the next one trusts ----

def private_name(prefix: str) -> str:
    """``<prefix>-<host>-<pid>``: a name no other live process uses (see :func:`remove_dead`)."""
    import socket

    return f"{prefix}-{socket.gethostname()}-{os.getpid()}"


def remove_dead(parent: str | os.PathLike, prefix: str) -> list[Path]:
    """Delete ``parent/<prefix>-<host>-<pid>`` folders and files whose process on this host is gone.

    Work that a killed run left half done (a build folder, a results file) is removed, never reused;
    folders of live processes and of other hosts are left alone. Returns what was removed.
    """
    import shutil
    import socket

    host = socket.gethostname()
    removed = []
    for p in Path(parent).glob(f"{prefix}-{host}-*"):
        pid = p.name.rsplit("-", 1)[-1]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        removed.append(p)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def die_with_parent() -> None:
    """``preexec_fn`` for tool subprocesses: the child gets SIGKILL when this process dies.

    So a killed ``logicforge synth`` does not leave nextpnr writing into the folder that the next
    run uses. Linux only (``prctl(PR_SET_PDEATHSIG)``); elsewhere a no-op.
    """
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
