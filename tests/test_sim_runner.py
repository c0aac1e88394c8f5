"""The cocotb hook of ``sim.verilator``: ``PortsOnlyVerilator`` overrides cocotb's private
``Verilator._build_command``. These tests fail loudly when a cocotb upgrade moves or changes it.

No Verilator build runs here: cocotb's ``Runner.build`` is driven with its ``_execute`` step
replaced, so the commands it would run are captured instead.
"""

import cocotb
import pytest
from cocotb_tools.runner import Verilator

from logicforge.errors import LogicforgeError
from logicforge.sim import verilator as sv

HOOK_GONE = ("cocotb_tools.runner.Verilator._build_command is gone or no longer returns the verilator "
             "command first: update logicforge.sim.verilator.PortsOnlyVerilator (it drops "
             "--public-flat-rw) for cocotb {}")


def _build_commands(runner, tmp_path, monkeypatch) -> list[list[str]]:
    """The commands ``runner.build`` would run for a one-line Verilog module."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    src = tmp_path / "m.v"
    src.write_text("module m(input clk); endmodule\n")
    captured = []
    monkeypatch.setattr(runner, "_execute", lambda cmds, cwd: captured.extend(cmds))
    runner.build(sources=[src], hdl_toplevel="m", build_dir=tmp_path / "obj", always=True)
    return [[str(a) for a in cmd] for cmd in captured]


def test_private_hook_exists():
    assert callable(getattr(Verilator, "_build_command", None)), HOOK_GONE.format(cocotb.__version__)


def test_installed_cocotb_is_a_checked_version():
    sv.check_cocotb()  # raises LogicforgeError naming the version otherwise


def test_unchecked_cocotb_version_is_refused(monkeypatch):
    monkeypatch.setattr(cocotb, "__version__", "2.2.0")
    with pytest.raises(LogicforgeError, match=r"cocotb 2\.2\.0: the ports-only Verilator build"):
        sv.get_runner(public_all=False)


def test_cocotb_passes_the_flag_and_the_subclass_drops_it(tmp_path, monkeypatch):
    plain = _build_commands(sv.get_runner(), tmp_path / "plain", monkeypatch)
    ours = _build_commands(sv.get_runner(public_all=False), tmp_path / "ours", monkeypatch)
    assert plain and "verilator" in plain[0][0], HOOK_GONE.format(cocotb.__version__)
    assert sv.PUBLIC_FLAT_RW in plain[0], (
        f"cocotb {cocotb.__version__} no longer passes {sv.PUBLIC_FLAT_RW}: PortsOnlyVerilator may be "
        f"unnecessary now; check logicforge.sim.verilator")
    assert sv.PUBLIC_FLAT_RW not in ours[0]
    # nothing else changes: the same command without the one flag (paths differ by build dir only)
    strip = [a for a in plain[0] if a != sv.PUBLIC_FLAT_RW]
    assert len(ours[0]) == len(strip)
    assert [a.replace(str(tmp_path / "ours"), "D") for a in ours[0]] == \
           [a.replace(str(tmp_path / "plain"), "D") for a in strip]
    assert len(ours) == len(plain)
