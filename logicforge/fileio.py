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
