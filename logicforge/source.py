"""Where a command's netlist comes from: ``--run runs/<name>`` or ``--netlist <file>``, and where its
build outputs go (``build/<name>/...``). The options themselves are declared in
``logicforge.commands.options.add_source``."""

from __future__ import annotations

import argparse
from pathlib import Path

from logicforge.errors import LogicforgeError

DEFAULT_RUN = "runs/default"
BUILD_ROOT = Path("build")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``--run``/``--netlist``/``--build-dir``: the same as ``logicforge.commands.options.add_source``."""
    from logicforge.commands.options import add_source

    add_source(p)


def netlist_path(args) -> Path:
    if getattr(args, "netlist", None):
        return Path(args.netlist)
    run = Path(getattr(args, "run", None) or DEFAULT_RUN)
    path = run / "netlist.json"
    if not path.exists():
        if not run.exists():
            raise LogicforgeError(f"{run}: no such run directory (train first: make train, or pass NETLIST=<file>)")
        raise LogicforgeError(f"{run}: has no netlist.json (training not finished?)")
    return path


def design_name(args) -> str:
    """The name used under build/: the run directory's name, or the netlist file's stem."""
    if getattr(args, "netlist", None):
        return Path(args.netlist).stem
    return Path(getattr(args, "run", None) or DEFAULT_RUN).name


def load(args):
    """Load and validate the selected netlist; return (netlist, name)."""
    from logicforge.netlist import format as nf

    return nf.load(netlist_path(args)), design_name(args)


def run_hardware(args) -> dict:
    """The ``hardware`` block of the selected run's saved config (``<run>/config.yaml``, loaded
    safely); ``{}`` for a netlist file, or a run without a saved config or block."""
    import yaml

    if getattr(args, "netlist", None):
        return {}
    path = Path(getattr(args, "run", None) or DEFAULT_RUN) / "config.yaml"
    if not path.exists():
        return {}
    try:
        cfg = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise LogicforgeError(f"{path}: cannot read the run's config ({e.__class__.__name__})") from None
    hw = cfg.get("hardware") if isinstance(cfg, dict) else None
    return hw if isinstance(hw, dict) else {}


def build_dir(args, *parts: str) -> Path:
    return Path(args.build_dir) / design_name(args) / Path(*parts) if parts else Path(args.build_dir) / design_name(args)
