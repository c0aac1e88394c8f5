"""The netlist file: the contract between training and hardware (see docs/netlist.md).

A netlist is JSON data, never code. ``load`` validates every field and raises ``NetlistError`` with
one line naming the first field that is wrong.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from logicforge.errors import LogicforgeError
from logicforge.fileio import write_text
from logicforge.netlist import lut
from logicforge.netlist.gates import NUM_OPS

FORMAT = "logicforge-netlist"
#: Version 1: gate layers only. Version 2 adds LUT4 layers; a netlist without one is still written as
#: version 1, so gate-only files read the same everywhere.
VERSION = 2
VERSIONS = (1, 2)
MAX_FEATURE_WIDTH = 32


def score_width(group_size: int) -> int:
    """Bits of a class score, a popcount in 0..group_size: the width of each field of ``out_scores``."""
    return max(1, int(group_size).bit_length())


class NetlistError(LogicforgeError):
    """A netlist that fails validation; the message names the offending field."""


@dataclass
class Layer:
    """One gate layer: gate ``n`` computes ``op[n]`` of inputs ``a[n]`` and ``b[n]``."""

    op: np.ndarray
    a: np.ndarray
    b: np.ndarray

    def __post_init__(self):
        self.op = np.asarray(self.op, dtype=np.int64)
        self.a = np.asarray(self.a, dtype=np.int64)
        self.b = np.asarray(self.b, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.op)


@dataclass
class LutLayer:
    """One LUT4 layer (``netlist/lut.py``): node ``n`` outputs bit ``sum(2**i * input(ins[n, i]))`` of
    its 16-bit ``table[n]``."""

    table: np.ndarray
    ins: np.ndarray

    def __post_init__(self):
        self.table = np.asarray(self.table, dtype=np.int64)
        self.ins = np.asarray(self.ins, dtype=np.int64).reshape(-1, lut.PINS)

    def __len__(self) -> int:
        return len(self.table)


def layer_dict(layer) -> dict:
    """A layer's JSON object."""
    if isinstance(layer, LutLayer):
        return {"lut4": layer.table.tolist(), "in": layer.ins.tolist()}
    return {"op": layer.op.tolist(), "a": layer.a.tolist(), "b": layer.b.tolist()}


@dataclass
class Netlist:
    features: int
    feature_width: int
    thresholds: list[list[int]]
    layers: list[Layer]
    class_names: list[str]
    group_size: int
    tau: float = 1.0
    extra: dict = field(default_factory=dict)

    # -- derived quantities -------------------------------------------------------------------
    @property
    def classes(self) -> int:
        return len(self.class_names)

    @property
    def num_inputs(self) -> int:
        """Number of encoded input bits (sum of the threshold counts)."""
        return sum(len(t) for t in self.thresholds)

    @property
    def num_gates(self) -> int:
        return sum(len(layer) for layer in self.layers)

    @property
    def score_width(self) -> int:
        """Bits needed for a class score, a popcount in 0..group_size."""
        return score_width(self.group_size)

    @property
    def has_luts(self) -> bool:
        """Whether any layer is a LUT4 layer (a version-2 netlist)."""
        return any(isinstance(layer, LutLayer) for layer in self.layers)

    def encoded_bits(self) -> list[tuple[int, int]]:
        """(feature, threshold) of every encoded bit, in encoded-bit order."""
        return [(f, t) for f, ts in enumerate(self.thresholds) for t in ts]

    # -- serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = {
            "format": FORMAT,
            "version": VERSION if self.has_luts else 1,
            "inputs": {
                "features": int(self.features),
                "feature_width": int(self.feature_width),
                "thresholds": [[int(t) for t in ts] for ts in self.thresholds],
            },
            "layers": [layer_dict(l) for l in self.layers],
            "outputs": {
                "classes": self.classes,
                "class_names": list(self.class_names),
                "group_size": int(self.group_size),
                "tau": float(self.tau),
            },
        }
        for k, v in self.extra.items():
            d.setdefault(k, v)
        return d

    @classmethod
    def from_dict(cls, d, source: str = "netlist") -> "Netlist":
        return _parse(d, source)

    def save(self, path: str | os.PathLike) -> None:
        """Write the netlist atomically, one layer array per line."""
        d = self.to_dict()
        layers = d.pop("layers")
        body = json.dumps(d, indent=1)[:-2]
        lines = [",\n \"layers\": ["]
        for i, l in enumerate(layers):
            sep = "," if i + 1 < len(layers) else ""
            if "lut4" in l:
                lines.append("\n  {\"lut4\": %s,\n   \"in\": %s}%s" % (json.dumps(l["lut4"]), json.dumps(l["in"]), sep))
            else:
                lines.append("\n  {\"op\": %s,\n   \"a\": %s,\n   \"b\": %s}%s" % (
                    json.dumps(l["op"]), json.dumps(l["a"]), json.dumps(l["b"]), sep))
        write_text(path, body + "".join(lines) + "\n ]\n}\n")

    def validate(self) -> "Netlist":
        """Re-check an in-memory netlist (e.g. after a pass) with the loader's rules."""
        return _parse(self.to_dict(), "netlist")


def load(path: str | os.PathLike) -> Netlist:
    """Read and validate a netlist file."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise NetlistError(f"{path}: no such netlist file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise NetlistError(f"{path}: cannot read netlist ({e.__class__.__name__}: {e})") from None
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise NetlistError(f"{path}: not valid JSON (line {e.lineno} column {e.colno}: {e.msg})") from None
    except RecursionError:
        raise NetlistError(f"{path}: JSON nested too deeply") from None
    return _parse(d, str(path))


# -- validation --------------------------------------------------------------------------------

def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _parse(d, source: str) -> Netlist:
    def fail(where: str, msg: str):
        raise NetlistError(f"{source}: {where}: {msg}")

    def get(obj, key, where):
        if not isinstance(obj, dict):
            fail(where, "must be an object")
        if key not in obj:
            fail(f"{where}.{key}" if where else key, "missing")
        return obj[key]

    def int_in(v, where, lo, hi=None):
        if not _is_int(v):
            fail(where, f"must be an integer, got {type(v).__name__}")
        if v < lo or (hi is not None and v > hi):
            fail(where, f"{v} out of range [{lo}, {hi if hi is not None else 'inf'}]")
        return v

    def int_array(v, where, lo, hi):
        if not isinstance(v, list):
            fail(where, "must be a list of integers")
        for i, x in enumerate(v):
            if not _is_int(x):
                fail(f"{where}[{i}]", f"must be an integer, got {type(x).__name__}")
            if x < lo or x > hi:  # checked on Python ints: a huge value must not overflow int64
                fail(f"{where}[{i}]", f"{x} out of range [{lo}, {hi}]")
        return np.asarray(v, dtype=np.int64)

    if not isinstance(d, dict):
        fail("top level", "must be a JSON object")
    if get(d, "format", "") != FORMAT:
        fail("format", f"must be {FORMAT!r}, got {d['format']!r}")
    version = get(d, "version", "")
    if not _is_int(version) or version not in VERSIONS:
        fail("version", f"unsupported version {version!r} (this reader knows {', '.join(map(str, VERSIONS))})")

    inputs = get(d, "inputs", "")
    features = int_in(get(inputs, "features", "inputs"), "inputs.features", 1)
    width = int_in(get(inputs, "feature_width", "inputs"), "inputs.feature_width", 1, MAX_FEATURE_WIDTH)
    ths = get(inputs, "thresholds", "inputs")
    if not isinstance(ths, list):
        fail("inputs.thresholds", "must be a list with one list of thresholds per feature")
    if len(ths) != features:
        fail("inputs.thresholds", f"has {len(ths)} entries, expected one per feature ({features})")
    thresholds = []
    for f, ts in enumerate(ths):
        arr = int_array(ts, f"inputs.thresholds[{f}]", 1, (1 << width) - 1)
        if np.any(np.diff(arr) <= 0):
            fail(f"inputs.thresholds[{f}]", "must be strictly ascending")
        thresholds.append(arr.tolist())
    n_bits = sum(len(t) for t in thresholds)
    if n_bits == 0:
        fail("inputs.thresholds", "no feature has a threshold, so there are no encoded bits")

    raw_layers = get(d, "layers", "")
    if not isinstance(raw_layers, list) or not raw_layers:
        fail("layers", "must be a non-empty list")
    layers = []
    width_in = n_bits
    for i, l in enumerate(raw_layers):
        where = f"layers[{i}]"
        if not isinstance(l, dict):
            fail(where, "must be an object with arrays op, a and b (or lut4 and in)")
        if "lut4" in l or "in" in l:
            if version < 2:
                fail(where, "a LUT4 layer (lut4, in) needs version 2")
            table = int_array(get(l, "lut4", where), f"{where}.lut4", 0, (1 << lut.TABLE_BITS) - 1)
            ins = get(l, "in", where)
            if not isinstance(ins, list):
                fail(f"{where}.in", f"must be a list with {lut.PINS} input indices per node")
            rows = []
            for n, row in enumerate(ins):
                if not isinstance(row, list) or len(row) != lut.PINS:
                    fail(f"{where}.in[{n}]", f"must be a list of {lut.PINS} input indices")
                rows.append(int_array(row, f"{where}.in[{n}]", 0, width_in - 1))
            if len(rows) != len(table):
                fail(where, f"lut4 and in differ in length ({len(table)}, {len(rows)})")
            if len(table) == 0:
                fail(where, "has no nodes")
            layers.append(LutLayer(table, np.array(rows, dtype=np.int64)))
            width_in = len(table)
            continue
        op = int_array(get(l, "op", where), f"{where}.op", 0, NUM_OPS - 1)
        a = int_array(get(l, "a", where), f"{where}.a", 0, width_in - 1)
        b = int_array(get(l, "b", where), f"{where}.b", 0, width_in - 1)
        if not (len(op) == len(a) == len(b)):
            fail(where, f"op, a and b differ in length ({len(op)}, {len(a)}, {len(b)})")
        if len(op) == 0:
            fail(where, "has no gates")
        layers.append(Layer(op, a, b))
        width_in = len(op)

    outputs = get(d, "outputs", "")
    classes = int_in(get(outputs, "classes", "outputs"), "outputs.classes", 2)
    names = get(outputs, "class_names", "outputs")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        fail("outputs.class_names", "must be a list of strings")
    if len(names) != classes:
        fail("outputs.class_names", f"has {len(names)} names for {classes} classes")
    group = int_in(get(outputs, "group_size", "outputs"), "outputs.group_size", 1)
    tau = get(outputs, "tau", "outputs")
    if isinstance(tau, int) and not isinstance(tau, bool) and tau > 1e300:
        fail("outputs.tau", f"must be a positive finite number, got an integer of {len(str(tau))} digits")
    if not isinstance(tau, (int, float)) or isinstance(tau, bool) or not math.isfinite(tau) or tau <= 0:
        fail("outputs.tau", f"must be a positive finite number, got {tau!r}")
    if width_in != classes * group:
        fail(f"layers[{len(layers) - 1}]",
             f"last layer has {width_in} nodes, expected classes*group_size = {classes * group}")

    known = {"format", "version", "inputs", "layers", "outputs"}
    extra = {k: v for k, v in d.items() if k not in known}
    return Netlist(features, width, thresholds, layers, list(names), group, float(tau), extra)
