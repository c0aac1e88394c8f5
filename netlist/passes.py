"""Netlist optimisation passes on a leveled gate DAG (the IR the hardware generator consumes).

Why an IR: absorbing a pass-through gate makes its consumer read a signal from an earlier layer,
which the layered netlist format cannot express. ``Graph`` is a DAG whose gates may read any
earlier node; the hardware generator levels it and adds delay registers where a signal crosses
pipeline stages.

Nodes and literals
------------------
* node 0 is the constant 0;
* nodes ``1 .. len(inputs)`` are encoded input bits, ``inputs[i] = (feature, threshold)`` meaning
  ``x[feature] >= threshold``;
* gate ``j`` is node ``first_gate + j`` and computes ``op[j]`` of nodes ``a[j]`` and ``b[j]``
  (``a[j], b[j] < `` its own node id: gates are stored in topological order);
* a *literal* is ``2 * node + inverted``; ``outputs`` holds the K*G class-output literals in
  netlist order (class-major), so ``0`` is constant 0 and ``1`` constant 1.

Gate inputs are nodes, never inverted literals: an inversion is absorbed into the consumer's op.
Every op manipulation (inverting an input, swapping inputs, complementing, restricting to a
constant input) is derived from ``gates.TRUTH``.

Table nodes (a netlist's LUT4 layers, ``netlist/lut.py``) are gates with op ``LUT``; ``luts[j]``
holds their ``(table, input nodes)``. Every rebuild puts them in a normal form: inversions and
constants absorbed into the table, pins the table ignores dropped, the input nodes in ascending
order; a node left with two pins or fewer becomes an ordinary gate, a wire or a constant, so the
passes then treat it as one.

Every pass maps a ``Graph`` to a ``Graph`` computing the same K*G output bits for every input;
``optimize`` runs them to a fixed point and reports gate counts before and after each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

import numpy as np

from logicforge.netlist import lut, reference
from logicforge.netlist.format import LutLayer, Netlist
from logicforge.netlist.gates import NUM_OPS, READS_A, READS_B, TRUTH, apply_bitwise

CONST = 0  #: node id of the constant 0 (literal 0 = false, literal 1 = true)
LUT = NUM_OPS  #: the op of a table node; ``Graph.luts[j]`` holds its table and input nodes


# -- op algebra, derived from TRUTH ------------------------------------------------------------

def _op_with_table(table: np.ndarray) -> int:
    """The op whose 2x2 truth table (indexed [a, b]) equals ``table``."""
    for op in range(NUM_OPS):
        if np.array_equal(TRUTH[op], table):
            return op
    raise AssertionError("every 2x2 Boolean table is one of the 16 gates")


#: INVERT_A[op](a, b) == op(not a, b); INVERT_B likewise for b.
INVERT_A = tuple(_op_with_table(TRUTH[op][::-1, :]) for op in range(NUM_OPS))
INVERT_B = tuple(_op_with_table(TRUTH[op][:, ::-1]) for op in range(NUM_OPS))
#: SWAP[op](b, a) == op(a, b).
SWAP = tuple(_op_with_table(TRUTH[op].T) for op in range(NUM_OPS))
#: COMPLEMENT[op](a, b) == not op(a, b).
COMPLEMENT = tuple(_op_with_table(1 - TRUTH[op]) for op in range(NUM_OPS))


def _unary_literal(f0: int, f1: int, x_node: int) -> int:
    """The literal of the one-input function f(x) with f(0)=f0, f(1)=f1 applied to node x."""
    if f0 == f1:
        return int(f0)  # constant literal
    return 2 * x_node + int(f0)  # f = x (0, 1) or not x (1, 0)


# -- the graph ---------------------------------------------------------------------------------

@dataclass
class Graph:
    """A leveled gate DAG; see the module docstring for the node and literal numbering."""

    features: int
    feature_width: int
    classes: int
    group_size: int
    inputs: list[tuple[int, int]]
    op: list[int]
    a: list[int]
    b: list[int]
    outputs: list[int]
    luts: dict[int, tuple[int, tuple[int, ...]]] = field(default_factory=dict)

    @property
    def num_inputs(self) -> int:
        return len(self.inputs)

    @property
    def num_gates(self) -> int:
        """Nodes that compute: two-input gates and table nodes."""
        return len(self.op)

    @property
    def num_luts(self) -> int:
        """Table nodes among the gates."""
        return len(self.luts)

    @property
    def first_gate(self) -> int:
        return 1 + len(self.inputs)

    @property
    def num_nodes(self) -> int:
        return self.first_gate + len(self.op)

    def reads(self, j: int) -> tuple[int, ...]:
        """The nodes gate ``j`` actually depends on (an op may ignore an input)."""
        op = self.op[j]
        if op == LUT:
            table, ins = self.luts[j]
            return tuple(n for i, n in enumerate(ins) if _depends(table, len(ins), i))
        return tuple(n for n, r in ((self.a[j], READS_A[op]), (self.b[j], READS_B[op])) if r)

    def levels(self) -> np.ndarray:
        """ASAP level of every node: 0 for the constant and inputs, 1 + the max level of the nodes
        a gate reads otherwise. A gate reading nothing (a constant op) gets level 1."""
        lev = np.zeros(self.num_nodes, dtype=np.int64)
        f = self.first_gate
        for j in range(self.num_gates):
            lev[f + j] = 1 + max((int(lev[n]) for n in self.reads(j)), default=0)
        return lev

    def depth(self) -> int:
        """Longest gate path from an input to a class output (0 if outputs read inputs directly)."""
        lev = self.levels()
        return max((int(lev[o >> 1]) for o in self.outputs), default=0)

    def check(self) -> "Graph":
        """Assert the structural invariants (topological order, literal ranges)."""
        assert len(self.op) == len(self.a) == len(self.b)
        assert len(self.outputs) == self.classes * self.group_size
        f = self.first_gate
        assert all(self.op[j] == LUT for j in self.luts)
        for j in range(self.num_gates):
            assert 0 <= self.op[j] <= LUT
            if self.op[j] == LUT:
                table, ins = self.luts[j]
                assert 1 <= len(ins) <= lut.PINS and 0 <= table < 1 << (1 << len(ins))
                assert all(0 <= n < f + j for n in ins), f"table node {j} reads a later node"
                continue
            assert 0 <= self.a[j] < f + j and 0 <= self.b[j] < f + j, f"gate {j} reads a later node"
        assert all(0 <= o < 2 * self.num_nodes for o in self.outputs)
        return self


def from_netlist(net: Netlist) -> Graph:
    """The netlist as a graph: one node per encoded bit and per gate, nothing simplified."""
    inputs = net.encoded_bits()
    op, a, b, luts = [], [], [], {}
    prev_base = 1  # node id of the previous layer's first signal
    base = 1 + len(inputs)
    for layer in net.layers:
        if isinstance(layer, LutLayer):
            for table, ins in zip(layer.table.tolist(), layer.ins.tolist()):
                nodes = tuple(prev_base + int(i) for i in ins)
                luts[len(op)] = (int(table), nodes)
                op.append(LUT)
                a.append(nodes[0])
                b.append(nodes[1])
        else:
            op.extend(int(v) for v in layer.op)
            a.extend(prev_base + int(v) for v in layer.a)
            b.extend(prev_base + int(v) for v in layer.b)
        prev_base, base = base, base + len(layer)
    outputs = [2 * (prev_base + i) for i in range(len(net.layers[-1]))]
    return Graph(net.features, net.feature_width, net.classes, net.group_size,
                 list(inputs), op, a, b, outputs, luts).check()


@lru_cache(maxsize=1 << 16)
def _depends(table: int, k: int, i: int) -> bool:
    return lut.depends(table, k, i)


def _normal_table(table: int, lits: list[int]) -> tuple[int, tuple[int, ...]]:
    """A table node reading literals ``lits`` in normal form: ``(table, nodes)`` over the distinct,
    non-constant nodes it depends on, in ascending order."""
    k = len(lits)
    nodes = [lit >> 1 for lit in lits]
    for i, lit in enumerate(lits):
        if lit & 1:
            table = lut.flip(table, k, i)
        if nodes[i] == CONST:
            table = lut.restrict(table, k, i, 0)
    for i in range(k):
        for j in range(i + 1, k):
            if nodes[j] == nodes[i] != CONST:
                table = lut.tie(table, k, i, j)
    keep = sorted((i for i in range(k) if nodes[i] != CONST and _depends(table, k, i)
                   and nodes[i] not in nodes[:i]), key=lambda i: nodes[i])
    return lut.select(table, k, keep), tuple(nodes[i] for i in keep)


# -- the rebuild every pass is made of ---------------------------------------------------------

#: rule(op, a, b, next_literal) -> a replacement literal for the gate, or None to keep it.
Rule = Callable[[int, int, int, int], "int | None"]
#: lut_rule(table, nodes, next_literal): the same for a table node of three or four pins (normal form).
LutRule = Callable[[int, tuple, int], "int | None"]


def _rebuild(g: Graph, rule: Rule | None = None, *, live: np.ndarray | None = None,
             keep_inputs: list[bool] | None = None, lut_rule: LutRule | None = None) -> Graph:
    """Copy ``g`` gate by gate in topological order.

    Each gate's inputs are first mapped through the replacements made so far; an inverted input
    literal is absorbed into the op; an input the op ignores is pointed at the other input (or at
    the constant node), so later passes see only real dependencies. Then ``rule`` may replace the
    gate by a literal. A table node is put in normal form (see the module docstring) first; with two
    pins or fewer left it continues as a gate, else ``lut_rule`` may replace it. Gates with ``live[node]`` false are dropped (nothing live reads them).
    Inputs with ``keep_inputs[i]`` false are dropped (nothing reads them) and the rest renumbered.
    """
    n_in = g.num_inputs
    keep_inputs = keep_inputs if keep_inputs is not None else [True] * n_in
    inputs = [t for t, k in zip(g.inputs, keep_inputs) if k]
    lit_of = [0]  # old node -> new literal
    nxt = 1
    for k in keep_inputs:
        lit_of.append(2 * nxt if k else 0)
        nxt += int(k)
    first = 1 + len(inputs)
    op_out, a_out, b_out, luts_out = [], [], [], {}
    f = g.first_gate
    for j in range(g.num_gates):
        if live is not None and not live[f + j]:
            lit_of.append(0)
            continue
        op = g.op[j]
        new_lit = 2 * (first + len(op_out))
        if op == LUT:
            table, ins = g.luts[j]
            table, nodes = _normal_table(table, [lit_of[n] for n in ins])
            if len(nodes) <= 1:  # a constant, a wire or an inversion
                lit_of.append(int(table & 1) if not nodes else _unary_literal(table & 1, (table >> 1) & 1, nodes[0]))
                continue
            if len(nodes) > 2:
                r = lut_rule(table, nodes, new_lit) if lut_rule is not None else None
                if r is not None:
                    lit_of.append(int(r))
                    continue
                luts_out[len(op_out)] = (table, nodes)
                op_out.append(LUT)
                a_out.append(nodes[0])
                b_out.append(nodes[1])
                lit_of.append(new_lit)
                continue
            # two pins: the gate with this table (pin 0 is a, pin 1 is b: bit a + 2b)
            op = _op_with_table(np.array([[(table >> (ia + 2 * ib)) & 1 for ib in (0, 1)] for ia in (0, 1)]))
            la, lb = 2 * nodes[0], 2 * nodes[1]
        else:
            a, b = g.a[j], g.b[j]
            if not READS_A[op]:
                a = b if READS_B[op] else CONST
            if not READS_B[op]:
                b = a
            la, lb = lit_of[a], lit_of[b]
        if la & 1:
            op = INVERT_A[op]
        if lb & 1:
            op = INVERT_B[op]
        na, nb = la >> 1, lb >> 1
        r = rule(op, na, nb, new_lit) if rule is not None else None
        if r is not None:
            lit_of.append(int(r))
            continue
        op_out.append(op)
        a_out.append(na)
        b_out.append(nb)
        lit_of.append(new_lit)
    outputs = [lit_of[o >> 1] ^ (o & 1) for o in g.outputs]
    return Graph(g.features, g.feature_width, g.classes, g.group_size, inputs,
                 op_out, a_out, b_out, outputs, luts_out)


# -- the passes --------------------------------------------------------------------------------

def live_nodes(g: Graph) -> np.ndarray:
    """Boolean per node: can it influence a class output (through inputs that ops really read)?"""
    live = np.zeros(g.num_nodes, dtype=bool)
    for o in g.outputs:
        live[o >> 1] = True
    f = g.first_gate
    for j in range(g.num_gates - 1, -1, -1):
        if live[f + j]:
            for n in g.reads(j):
                live[n] = True
    return live


def remove_dead(g: Graph) -> Graph:
    """Drop gates that cannot reach a class output."""
    return _rebuild(g, live=live_nodes(g))


def fold_constants(g: Graph) -> Graph:
    """Replace gates with a constant op or a constant input by the restricted function: a
    constant, the other input, or its inversion (absorbed by consumers)."""

    def rule(op, a, b, _next):
        if a == CONST and b == CONST:
            return int(TRUTH[op, 0, 0])
        if a == CONST:
            return _unary_literal(TRUTH[op, 0, 0], TRUTH[op, 0, 1], b)
        if b == CONST:
            return _unary_literal(TRUTH[op, 0, 0], TRUTH[op, 1, 0], a)
        return None

    return _rebuild(g, rule)


def absorb_wires(g: Graph) -> Graph:
    """Turn pass-through and NOT gates (and gates reading one signal twice) into wires or
    inversions; consumers absorb the inversion into their op, class outputs keep an inverted
    literal."""

    def rule(op, a, b, _next):
        if a == b and a != CONST:
            return _unary_literal(TRUTH[op, 0, 0], TRUTH[op, 1, 1], a)
        return None

    return _rebuild(g, rule)


def merge_duplicates(g: Graph) -> Graph:
    """Merge gates computing the same function of the same nodes, up to input order and output
    complement (a NAND of x, y reuses an AND of y, x and inverts it)."""
    seen: dict[tuple, int] = {}

    def lut_rule(table, nodes, next_lit):
        inv = table & 1
        key = (lut.complement(table, len(nodes)) if inv else table, nodes)
        if key in seen:
            return seen[key] ^ inv
        seen[key] = next_lit ^ inv
        return None

    def rule(op, a, b, next_lit):
        if a > b:
            op, a, b = SWAP[op], b, a
        inv = int(TRUTH[op, 0, 0])
        key = (COMPLEMENT[op] if inv else op, a, b)
        if key in seen:
            return seen[key] ^ inv
        seen[key] = next_lit ^ inv
        return None

    return _rebuild(g, rule, lut_rule=lut_rule)


def drop_unused_inputs(g: Graph) -> Graph:
    """Drop encoded input bits (threshold comparators) that no gate or output reads."""
    used = np.zeros(g.num_nodes, dtype=bool)
    for o in g.outputs:
        used[o >> 1] = True
    for j in range(g.num_gates):
        for n in g.reads(j):
            used[n] = True
    return _rebuild(g, keep_inputs=[bool(u) for u in used[1:g.first_gate]])


#: The passes one round runs, in order; ``optimize`` repeats rounds until nothing changes.
ROUND = (
    ("dead", remove_dead),
    ("constants", fold_constants),
    ("wires", absorb_wires),
    ("dedup", merge_duplicates),
)
MAX_ROUNDS = 20


def optimize(net_or_graph: Netlist | Graph) -> tuple[Graph, list[dict]]:
    """Run the passes to a fixed point; return the optimised graph and the report.

    Report rows: ``{"name", "round", "gates_before", "gates_after", "inputs_before",
    "inputs_after"}``, one per pass run, in order. The last row is the ``inputs`` pass.
    """
    g = from_netlist(net_or_graph) if isinstance(net_or_graph, Netlist) else net_or_graph
    report = []

    def run(name, fn, rnd):
        nonlocal g
        before_g, before_i = g.num_gates, g.num_inputs
        g = fn(g).check()
        report.append({"name": name, "round": rnd, "gates_before": before_g,
                       "gates_after": g.num_gates, "inputs_before": before_i,
                       "inputs_after": g.num_inputs})

    for rnd in range(1, MAX_ROUNDS + 1):
        start = g.num_gates
        for name, fn in ROUND:
            run(name, fn, rnd)
        if g.num_gates == start:
            break
    run("inputs", drop_unused_inputs, rnd)
    return g, report


def normalize(net_or_graph: Netlist | Graph) -> Graph:
    """The graph without optimisation (only unread inputs repointed); for ``optimize=False``."""
    g = from_netlist(net_or_graph) if isinstance(net_or_graph, Netlist) else net_or_graph
    return _rebuild(g).check()


# -- evaluation --------------------------------------------------------------------------------

def evaluate_bits(g: Graph, x) -> np.ndarray:
    """The K*G class-output bits for (n, F) integer features: an (n, K*G) uint8 array.

    Bit-packed like the reference; all gates of one ASAP level are evaluated at once.
    """
    x = np.asarray(x, dtype=np.int64)
    n = x.shape[0]
    words = -(-n // 64) if n else 1
    vals = np.zeros((g.num_nodes, words), dtype=np.uint64)
    if g.inputs and n:
        vals[1:g.first_gate] = reference.pack(reference.compare(x, g.inputs).T)
    lev = g.levels()
    f = g.first_gate
    op = np.asarray(g.op, dtype=np.int64)
    a = np.asarray(g.a, dtype=np.int64)
    b = np.asarray(g.b, dtype=np.int64)
    glev = lev[f:]
    for level in range(1, int(glev.max(initial=0)) + 1):
        idx = np.nonzero((glev == level) & (op != LUT))[0]
        if len(idx):
            vals[f + idx] = apply_bitwise(op[idx], vals[a[idx]], vals[b[idx]])
        by_pins: dict[int, list[int]] = {}
        for j in np.nonzero((glev == level) & (op == LUT))[0].tolist():
            by_pins.setdefault(len(g.luts[j][1]), []).append(j)
        for js in by_pins.values():
            tables = np.array([g.luts[j][0] for j in js], dtype=np.int64)
            ins = np.array([g.luts[j][1] for j in js], dtype=np.int64)
            vals[f + np.array(js)] = lut.apply_bitwise(tables, vals[ins])
    out_nodes = np.array([o >> 1 for o in g.outputs], dtype=np.int64)
    inv = np.array([o & 1 for o in g.outputs], dtype=bool)
    out = vals[out_nodes]
    out[inv] = ~out[inv]
    return reference.unpack(out, n).T if n else np.zeros((0, len(g.outputs)), dtype=np.uint8)


def evaluate(g: Graph, x) -> tuple[np.ndarray, np.ndarray]:
    """(scores, classes) exactly as ``reference.evaluate`` defines them, computed on the graph."""
    return reference.score(evaluate_bits(g, x), g.classes, g.group_size)
