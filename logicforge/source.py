"""Where a command's netlist comes from: ``--run runs/<name>`` or ``--netlist <file>``."""

from __future__ import annotations

import argparse
from pathlib import Path

from logicforge.errors import LogicforgeError

DEFAULT_RUN = "runs/default"
BUILD_ROOT = Path("build")


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--run", metavar="DIR", help=f"a training run directory (default {DEFAULT_RUN})")
    g.add_argument("--netlist", metavar="FILE", help="a netlist JSON file")
    p.add_argument("--build-dir", metavar="DIR", default=str(BUILD_ROOT),
                   help="root of the build tree (default build/)")


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


def build_dir(args, *parts: str) -> Path:
    return Path(args.build_dir) / design_name(args) / Path(*parts) if parts else Path(args.build_dir) / design_name(args)
