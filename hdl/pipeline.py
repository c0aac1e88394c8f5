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

The SERIAL head (``head="serial"``, ``hdl/head.py``'s ``SerialHead``; the board top's default)
replaces stages 3 and 4 for designs whose samples arrive far apart. The last gate stage's register
becomes K shift chains of G bits (each chain flip-flop loads the stage's combinational output
literal when ``load`` is high, else the next bit of its chain), shifted out one bit per clock into
K score counters; then the counters are copied into a scan register, which rotates through a
K-class argmax scan (the counters keep the scores). From ``in_valid`` to ``out_valid``:
``E + max(stages, 1) + G + 2K + 2`` cycles (the load
edge replaces the last gate stage's register; with no gate stage the chains load from the encode
register, or from ``in_bits`` of a ``pre_encoded`` core). Samples must be at least
``serial_interval(G, K) = G + 2K + 3`` cycles apart.

With the serial head the gate registers HOLD (``held_registers``): samples are far apart, so a
stage's register keeps one sample's values until the next sample reaches it, and a signal is
registered once, in the stage that computes it; every later stage reads it from there (no delay
registers). Each gate is then computed as late as its readers allow (``latest_levels``), so the
gates only the head reads share the last stage's LUTs with the shift chains. The encode register
loads only with ``in_valid``; a ``pre_encoded`` core instead needs ``in_bits`` unchanged for
``input_hold_cycles`` cycles from ``in_valid``'s (until the chains have loaded).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from logicforge.errors import LogicforgeError, check_choice

#: Chosen by measurement on iCE40UP5K (see docs/hardware.md).
DEFAULT_LAYERS_PER_STAGE = 3
DEFAULT_POPCOUNT_LEVELS_PER_STAGE = 1
ENCODE_STAGES = 1
#: Cycles per class of the serial head's argmax scan: compare (the one-bit ``count > best``, a
#: carry chain, registered), then select (measured: the compare and the update in one cycle ran at
#: 52 MHz on iCE40UP5K).
SERIAL_SCAN_CYCLES_PER_CLASS = 2
#: Most shift-chain flip-flops one copy of the serial head's ``load`` drives: the core registers
#: ``ceil(chain bits / SERIAL_LOAD_FANOUT)`` copies of it (and one for the counters and control),
#: kept apart in synthesis with ``REPLICA_ATTR``. Measured on the Fashion-MNIST up5k top (800 chain
#: bits): one ``load`` net limited Fmax to 86.9 MHz (a 5.7 ns route).
SERIAL_LOAD_FANOUT = 64
#: Registers between a shift chain's last bit and its counter (the chains spread over the chip;
#: measured: the route from the chain into the counter's carry chain limited the Fashion-MNIST up5k
#: top to 93.6 MHz).
SERIAL_TAIL_STAGES = 1
#: Cycles between the last count and the scan: the counters are copied into the scan register,
#: which rotates during the scan, so a counter's next state is only ``count + tail`` (its LUT in
#: the carry chain, with the flip-flop in the same cell; measured: a counter that also rotated had
#: its multiplexer in a separate LUT after the carry chain, and limited the G 160 Fashion-MNIST
#: up5k top to 81.7 MHz).
SERIAL_SETTLE_STAGES = 1
#: The serial head's default gate levels per stage: its last gate stage also holds the shift
#: multiplexer (merged chains), one LUT level more. Measured on the digits default top at 100 MHz:
#: 3 levels per stage 86.0 / 87.4 / 83.6 MHz (seeds default / 2 / 3), 2 levels 101.5 MHz (1717 LCs);
#: with held registers, 2 levels 112.0 MHz (1618 LCs), 1 level 106.1 MHz (1699 LCs).
DEFAULT_SERIAL_LAYERS_PER_STAGE = 2
#: Gate levels per stage, any head, for a netlist with LUT4 nodes (``netlist/lut.py``): a table node is a
#: whole LUT4, so ABC cannot fold two levels into one LUT as it does with trees of two-input gates.
#: Measured on configs/digits_lut4.yaml's top (serial head, 100.5 MHz PLL): 2 levels 87.4 / 83.4 / 92.7 MHz
#: (seeds default / 2 / 3; critical path two LUT4 levels), 1 level 103.7 MHz and 16 LCs fewer.
DEFAULT_TABLE_LAYERS_PER_STAGE = 1
#: Head kinds: ``tree`` (pipelined popcount + argmax, one sample per clock) and ``serial``.
HEADS = ("tree", "serial")
DEFAULT_HEAD = "tree"
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


def check_layers_per_stage(value, head: str | None = None, tables: bool = False) -> int:
    """The layers_per_stage to use: ``None`` means the default of the head (``DEFAULT_LAYERS_PER_STAGE``
    for the tree head, ``DEFAULT_SERIAL_LAYERS_PER_STAGE`` for the serial one), or
    ``DEFAULT_TABLE_LAYERS_PER_STAGE`` for a netlist with LUT4 nodes (``tables``); anything else must
    be an int >= 1."""
    if tables:
        default = DEFAULT_TABLE_LAYERS_PER_STAGE
    else:
        default = DEFAULT_SERIAL_LAYERS_PER_STAGE if head == "serial" else DEFAULT_LAYERS_PER_STAGE
    return _check_levels(value, default, "layers_per_stage")


def check_popcount_levels_per_stage(value) -> int:
    """Like ``check_layers_per_stage`` for the popcount tree."""
    return _check_levels(value, DEFAULT_POPCOUNT_LEVELS_PER_STAGE, "popcount_levels_per_stage")


def check_head(value) -> str:
    """The head kind to use: ``None`` means ``DEFAULT_HEAD``; anything else must be in ``HEADS``."""
    return check_choice(value, HEADS, DEFAULT_HEAD, "head")


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


def serial_head_latency(group_size: int, classes: int) -> int:
    """Cycles of the serial head from its load edge's cycle to ``out_valid``: the chain tails'
    register (``SERIAL_TAIL_STAGES``), G shift cycles into the counters, the copy into the scan
    register (``SERIAL_SETTLE_STAGES``), ``SERIAL_SCAN_CYCLES_PER_CLASS * K`` scan cycles, one to
    register the result: ``G + 2K + 3``."""
    return (SERIAL_TAIL_STAGES + int(group_size) + SERIAL_SETTLE_STAGES
            + SERIAL_SCAN_CYCLES_PER_CLASS * int(classes) + 1)


def serial_interval(group_size: int, classes: int) -> int:
    """Least number of cycles between two samples' ``in_valid`` for a serial head: ``G + 2K + 3``
    (the next load may come in the cycle the previous result is out)."""
    return serial_head_latency(group_size, classes)


def sample_interval(group_size: int, classes: int, head: str = DEFAULT_HEAD) -> int:
    """Least number of cycles between two samples: 1 for the tree head, ``serial_interval``."""
    return serial_interval(group_size, classes) if check_head(head) == "serial" else 1


def head_latency(group_size: int, classes: int,
                 popcount_levels_per_stage: int = DEFAULT_POPCOUNT_LEVELS_PER_STAGE,
                 head: str = DEFAULT_HEAD) -> int:
    """Cycles of the classifier head: tree, from its input register to ``out_valid`` (popcount,
    then argmax); serial, from the cycle its chains load (``serial_head_latency``)."""
    if check_head(head) == "serial":
        return serial_head_latency(group_size, classes)
    return popcount_stages(group_size, popcount_levels_per_stage) + argmax_stages(classes)


def held_registers(head: str) -> bool:
    """Whether the gate registers hold their sample (the serial head) instead of passing every
    signal on from stage to stage in delay registers (the tree head, one sample per clock)."""
    return check_head(head) == "serial"


def input_hold_cycles(*, depth: int, layers_per_stage: int, pre_encoded: bool, head: str) -> int:
    """Cycles, counting ``in_valid``'s own, for which the core reads its input port for one sample:
    1, except for a ``pre_encoded`` core with the serial head, whose later gate stages and chains
    read ``in_bits`` directly until they load (``serial_load_cycle + 1``)."""
    if held_registers(head) and pre_encoded:
        return serial_load_cycle(depth=depth, layers_per_stage=layers_per_stage, pre_encoded=True) + 1
    return 1


def serial_load_cycle(*, depth: int, layers_per_stage: int, pre_encoded: bool = False) -> int:
    """Cycle (after ``in_valid``'s) in which a serial head's chains load: the last gate stage's
    register edge, ``E + max(stages, 1) - 1``."""
    return (0 if pre_encoded else ENCODE_STAGES) + max(gate_stages(depth, layers_per_stage), 1) - 1


def latency(*, depth: int, layers_per_stage: int, group_size: int, classes: int,
            popcount_levels_per_stage: int = DEFAULT_POPCOUNT_LEVELS_PER_STAGE,
            pre_encoded: bool = False, head: str = DEFAULT_HEAD) -> int:
    """Clock cycles from a sample with ``in_valid`` to its result with ``out_valid``.

    Tree head: ``E + ceil(depth / layers_per_stage) + ceil(popcount_levels(G) /
    popcount_levels_per_stage) + 2 * ceil(log2 classes)`` with ``E = 1`` (the encode stage; 0 for a
    ``pre_encoded`` core), ``popcount_levels(1) = 0`` and ``popcount_levels(G) = 1 + ceil(log2
    ceil(G / 4))`` for G > 1.

    Serial head: ``E + max(ceil(depth / layers_per_stage), 1) + G + 2K + 2`` (the chains replace the
    last gate stage's register; ``serial_load_cycle`` + ``serial_head_latency``).
    """
    if check_head(head) == "serial":
        return (serial_load_cycle(depth=depth, layers_per_stage=layers_per_stage, pre_encoded=pre_encoded)
                + serial_head_latency(group_size, classes))
    return ((0 if pre_encoded else ENCODE_STAGES) + gate_stages(depth, layers_per_stage)
            + head_latency(group_size, classes, popcount_levels_per_stage))


@dataclass
class Schedule:
    """Where every node of a graph lives in the gate pipeline.

    ``stage[n]``: 0 for inputs (the encode register) and the constant, ``ceil(level / lps)`` for
    gates. ``last_use[n]``: the latest stage that reads node n, ``stages + 1`` for the head, -1 if
    nothing reads it. Which nodes each stage registers: ``registered``.
    """

    layers_per_stage: int
    depth: int
    stages: int
    level: np.ndarray
    stage: np.ndarray
    last_use: np.ndarray
    held: bool = False

    def registered(self, k: int) -> np.ndarray:
        """Mask of the nodes in gate stage ``k``'s register (``1 <= k <= stages``): a node computed
        in stage k that a later stage or the head reads; unless ``held`` (``held_registers``), also
        every node computed earlier and read after stage k (its delay register)."""
        live = ((self.stage == k) if self.held else (self.stage <= k)) & (k < self.last_use)
        live[0] = False
        return live


def latest_levels(graph, depth: int, layers_per_stage: int = 1) -> np.ndarray:
    """ALAP level of every node: a gate as late as its readers allow (one level before its
    earliest gate reader; ``depth`` if only the head reads it), inputs 0. Only for held registers
    (``held_registers``), where a gate's operands stay readable however late it is computed: a
    class output computed in the last stage shares its LUT with the shift chain's multiplexer.
    A table node (``netlist/lut.py``) has no pin to spare for that multiplexer, so one that only
    the head reads is computed in the stage before the last where its operands allow (at that
    stage's last level): its result is then a flip-flop in its own logic cell, and the chain's
    multiplexer one LUT after a register, not two (measured: see ``docs/hardware.md``, "LUT4
    nodes on the iCE40")."""
    from logicforge.netlist.passes import LUT

    lev = graph.levels()
    before_last = (gate_stages(depth, layers_per_stage) - 1) * layers_per_stage
    f = graph.first_gate
    latest = np.full(graph.num_nodes, int(depth), dtype=np.int64)
    used = np.zeros(graph.num_nodes, dtype=bool)
    for o in graph.outputs:
        used[o >> 1] = True
    for j in reversed(range(graph.num_gates)):
        if used[f + j]:  # lev[f + j] is still its ASAP level here
            table_last = graph.op[j] == LUT and latest[f + j] == depth and 0 < lev[f + j] <= before_last
            lev[f + j] = before_last if table_last else latest[f + j]
        for n in graph.reads(j):
            latest[n] = min(latest[n], lev[f + j] - 1)
            used[n] = used[n] or used[f + j]
    return lev


def schedule(graph, layers_per_stage: int, *, held: bool = False) -> Schedule:
    """Place every node in the gate pipeline: its ASAP level, or its ALAP level (``latest_levels``)
    with ``held`` registers."""
    lps = check_layers_per_stage(layers_per_stage)
    depth = graph.depth()
    level = latest_levels(graph, depth, lps) if held else graph.levels()
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
    return Schedule(lps, depth, stages, level, stage, last_use, held)
