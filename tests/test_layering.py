"""The rooms import downwards only (README "Layout"; each room's ``__init__`` says the same).

    netlist                      imports no other room
    train, hdl                   import netlist
    sim, boards                  import hdl and netlist (siblings: neither imports the other)
    logicforge (cli, commands)   imports everything; no room imports it

``logicforge.errors`` and ``logicforge.fileio`` are shared plumbing that every room may use; they
import no room. Imports are read with ``ast`` from the source files, including those inside
functions, so a lazy import counts as much as one at the top.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLUMBING = {"errors", "fileio"}
#: room -> the rooms it may import (itself and the plumbing always).
ALLOWED = {
    "netlist": set(),
    "train": {"netlist"},
    "hdl": {"netlist"},
    "sim": {"hdl", "netlist"},
    "boards": {"hdl", "netlist"},
}
ROOMS = set(ALLOWED)


def room_imports(source: str) -> set[str]:
    """The ``logicforge`` parts that ``source`` imports: room names, plumbing names, or ``cli`` for
    the command layer (``logicforge.cli``, ``logicforge.commands``, ``logicforge.source``, ...)."""
    found = set()

    def add(dotted: str) -> None:
        parts = dotted.split(".")
        if parts[0] != "logicforge":
            return
        if len(parts) == 1:
            found.add("cli")
            return
        part = parts[1]
        found.add(part if part in ROOMS or part in PLUMBING else "cli")

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "logicforge":
                for alias in node.names:
                    add(f"logicforge.{alias.name}")
            else:
                add(node.module)
    return found


def _modules(folder: Path):
    files = sorted(folder.rglob("*.py"))
    assert files, f"no Python files under {folder}"
    return files


@pytest.mark.parametrize("room", sorted(ROOMS))
def test_room_imports_only_lower_rooms(room):
    allowed = {room} | PLUMBING | ALLOWED[room]
    bad = []
    for path in _modules(ROOT / room):
        extra = room_imports(path.read_text()) - allowed
        if extra:
            bad.append(f"{path.relative_to(ROOT)} imports {', '.join(sorted(extra))}")
    assert not bad, (f"room {room} may import only {', '.join(sorted(allowed - {room}))}: "
                     + "; ".join(bad))


@pytest.mark.parametrize("name", sorted(PLUMBING))
def test_plumbing_imports_no_room(name):
    found = room_imports((ROOT / "logicforge" / f"{name}.py").read_text())
    assert found <= PLUMBING, f"logicforge/{name}.py imports {sorted(found - PLUMBING)}"


def test_the_check_sees_every_import_form():
    src = ("import logicforge.train.model\n"
           "from logicforge.hdl import core\n"
           "from logicforge import boards, errors\n"
           "def f():\n    from logicforge.commands import options\n"
           "from . import sibling\n")
    assert room_imports(src) == {"train", "hdl", "boards", "errors", "cli"}


def test_every_room_docstring_names_its_imports():
    for room in ROOMS:
        doc = ast.get_docstring(ast.parse((ROOT / room / "__init__.py").read_text())) or ""
        assert "May import" in doc, f"{room}/__init__.py: the docstring must say what the room may import"
