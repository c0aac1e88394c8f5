"""The pipeline structure of ``logicnet_core`` and its latency: the ONE definition.

Stages, in order, each ending in a register:

1. encode (1 cycle): the threshold comparators ``x[f] >= T`` the network uses;
2. gates (``ceil(depth / layers_per_stage)`` cycles): ``layers_per_stage`` gate levels of the
   optimised DAG per stage; signals that skip stages ride along in delay registers;
3. popcount (``ceil(popcount_levels(G) / popcount_levels_per_stage)`` cycles): per class, a leaf
   level of LUT compressors (popcounts of 4 bits, one LUT4 level), then a pairwise adder tree
   (carry chains); a register after every ``popcount_levels_per_stage`` of these levels;
4. argmax (``ARGMAX_STAGES_PER_LEVEL * ceil(log2 classes)`` cycles): a pairwise (score, index)
   tournament tree; each level is two stages, a compare stage (register the one-bit ``left >= right``
   next to both candidates) and a select stage (register the winner), so no stage holds more than
   one short carry chain or one LUT level of multiplexers. The left (lower-index) candidate wins
   ties, so the result is the smallest class with the maximal score. The scores are delayed alongside.

A core built ``pre_encoded`` takes the comparator bits from outside (the board top's streaming
encoder writes them into its own register) and has no encode stage: its latency is
``ENCODE_STAGES`` smaller.

``depth`` is the longest gate path of the optimised DAG (at most the netlist's layer count).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from logicforge.errors import LogicforgeError

#: Chosen by measurement on iCE40UP5K (see docs/hardware.md).
DEFAULT_LAYERS_PER_STAGE = 3
DEFAULT_POPCOUNT_LEVELS_PER_STAGE = 1
ENCODE_STAGES = 1
#: Register stages per argmax level: compare, then select (measured on iCE40UP5K, docs/hardware.md).
ARGMAX_STAGES_PER_LEVEL = 2
#: Bits per leaf compressor of the popcount (a 4-input popcount is one LUT4 per output bit).
LEAF_BITS = 4
#: Verilog attribute of registers that are deliberate copies of each other (to limit fan-out);
#: the synthesis scripts (boards/flow.py) keep them apart, since yosys merges equal registers.
REPLICA_ATTR = "lf_replica"


def _check_levels(value, default: int, what: str) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise LogicforgeError(f"{what} must be an integer >= 1, got {value!r}")
    return int(value)


def check_layers_per_stage(value) -> int:
    """The layers_per_stage to use: ``None`` means the default; anything else must be an int >= 1."""
    return _check_levels(value, DEFAULT_LAYERS_PER_STAGE, "layers_per_stage")


def check_popcount_levels_per_stage(value) -> int:
    """Like ``check_layers_per_stage`` for the popcount tree."""
    return _check_levels(value, DEFAULT_POPCOUNT_LEVELS_PER_STAGE, "popcount_levels_per_stage")


def gate_stages(depth: int, layers_per_stage: int) -> int:
    return math.ceil(depth / layers_per_stage)


def popcount_levels(group_size: int) -> int:
    """Levels of the popcount of ``group_size`` bits: none for one bit, else one leaf level of
    ``LEAF_BITS``-input compressors and ``ceil(log2 ceil(G / LEAF_BITS))`` pairwise adder levels."""
    g = int(group_size)
    if g <= 1:
        return 0
    return 1 + (-(-g // LEAF_BITS) - 1).bit_length()


def popcount_stages(group_size: int, popcount_levels_per_stage: int) -> int:
    return math.ceil(popcount_levels(group_size) / popcount_levels_per_stage)


def argmax_levels(classes: int) -> int:
    """Comparison levels of a pairwise argmax over ``classes`` candidates: ceil(log2 classes)."""
    return (int(classes) - 1).bit_length()


def argmax_stages(classes: int) -> int:
    """Register stages of the argmax: ``ARGMAX_STAGES_PER_LEVEL * ceil(log2 classes)``."""
    return ARGMAX_STAGES_PER_LEVEL * argmax_levels(classes)


def head_latency(group_size: int, classes: int,
                 popcount_levels_per_stage: int = DEFAULT_POPCOUNT_LEVELS_PER_STAGE) -> int:
    """Cycles of the classifier head (popcount, then argmax)."""
    return popcount_stages(group_size, popcount_levels_per_stage) + argmax_stages(classes)


def latency(*, depth: int, layers_per_stage: int, group_size: int, classes: int,
            popcount_levels_per_stage: int = DEFAULT_POPCOUNT_LEVELS_PER_STAGE,
            pre_encoded: bool = False) -> int:
    """Clock cycles from a sample with ``in_valid`` to its result with ``out_valid``:

    ``E + ceil(depth / layers_per_stage) + ceil(popcount_levels(G) / popcount_levels_per_stage)
    + 2 * ceil(log2 classes)`` with ``E = 1`` (the encode stage; 0 for a ``pre_encoded`` core),
    ``popcount_levels(1) = 0`` and ``popcount_levels(G) = 1 + ceil(log2 ceil(G / 4))`` for G > 1.
    """
    return ((0 if pre_encoded else ENCODE_STAGES) + gate_stages(depth, layers_per_stage)
            + head_latency(group_size, classes, popcount_levels_per_stage))


@dataclass
class Schedule:
    """Where every node of a graph lives in the gate pipeline.

    ``stage[n]``: 0 for inputs (the encode register) and the constant, ``ceil(level / lps)`` for
    gates. ``last_use[n]``: the latest stage that reads node n, ``stages + 1`` for the head, -1 if
    nothing reads it. A node is held in the register of every stage ``k`` with
    ``stage[n] <= k < last_use[n]``.
    """

    layers_per_stage: int
    depth: int
    stages: int
    level: np.ndarray
    stage: np.ndarray
    last_use: np.ndarray


def schedule(graph, layers_per_stage: int) -> Schedule:
    lps = check_layers_per_stage(layers_per_stage)
    level = graph.levels()
    depth = graph.depth()
    stages = gate_stages(depth, lps)
    stage = (level + lps - 1) // lps  # ceil; 0 for level 0
    last_use = np.full(graph.num_nodes, -1, dtype=np.int64)
    f = graph.first_gate
    for j in range(graph.num_gates):
        for n in graph.reads(j):
            last_use[n] = max(last_use[n], stage[f + j])
    for o in graph.outputs:
        last_use[o >> 1] = stages + 1
    last_use[0] = -1  # the constant is never registered
    return Schedule(lps, depth, stages, level, stage, last_use)
