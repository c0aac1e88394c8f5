"""The LUT4 node: the netlist's second node kind, a truth table of four inputs (docs/netlist.md).

A node with pins ``p[0..3]`` outputs bit ``m = p0 + 2*p1 + 4*p2 + 8*p3`` of its 16-bit table. One
such node is one iCE40 logic cell's LUT. The 16 two-input gates (``gates.py``) stay the default
node; this module is the one definition of the table node: its meaning, bitwise evaluation, and the
table algebra the passes use (a table over ``k`` pins has ``2**k`` bits, pin ``i`` is bit ``i`` of
the index).
"""

from __future__ import annotations

import numpy as np

#: Pins of a netlist LUT node.
PINS = 4
#: Bits of a netlist LUT node's table.
TABLE_BITS = 1 << PINS


def output(table: int, pins) -> int:
    """The node's output for pin bits ``pins`` (pin ``i`` is bit ``i`` of the table index)."""
    return (int(table) >> sum(int(p) << i for i, p in enumerate(pins))) & 1


def apply_bitwise(table: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Evaluate table nodes on packed bit words: ``table`` (N,) of ``2**k``-bit tables, ``x`` (N, k,
    words) unsigned words holding one sample per bit; returns (N, words)."""
    table = np.asarray(table, dtype=np.int64)
    k = x.shape[1]
    dtype = x.dtype
    ones = np.array(np.iinfo(dtype).max, dtype=dtype)
    out = np.zeros((x.shape[0], x.shape[2]), dtype=dtype)
    for m in range(1 << k):
        sel = np.where((table >> m) & 1 == 1, ones, dtype.type(0))[:, None]
        for i in range(k):
            sel = sel & (x[:, i] if (m >> i) & 1 else ~x[:, i])
        out |= sel
    return out


# -- table algebra (for the passes) --------------------------------------------------------------

def flip(table: int, k: int, i: int) -> int:
    """The table of the same node with pin ``i`` inverted."""
    return sum(((table >> (m ^ (1 << i))) & 1) << m for m in range(1 << k))


def restrict(table: int, k: int, i: int, value: int) -> int:
    """The table with pin ``i`` tied to ``value`` (still ``k`` pins; pin ``i`` is then ignored)."""
    bit = 1 << i
    return sum(((table >> ((m | bit) if value else (m & ~bit))) & 1) << m for m in range(1 << k))


def tie(table: int, k: int, i: int, j: int) -> int:
    """The table with pin ``j`` tied to pin ``i`` (pin ``j`` is then ignored)."""
    bi, bj = 1 << i, 1 << j
    return sum(((table >> ((m | bj) if m & bi else (m & ~bj))) & 1) << m for m in range(1 << k))


def depends(table: int, k: int, i: int) -> bool:
    """Whether the output depends on pin ``i``."""
    return restrict(table, k, i, 0) != restrict(table, k, i, 1)


def select(table: int, k: int, keep: list[int]) -> int:
    """The table over pins ``keep`` (in that order) of a node that ignores every other pin."""
    out = 0
    for m in range(1 << len(keep)):
        full = sum(((m >> n) & 1) << i for n, i in enumerate(keep))
        out |= ((table >> full) & 1) << m
    return out


def complement(table: int, k: int) -> int:
    return table ^ ((1 << (1 << k)) - 1)
