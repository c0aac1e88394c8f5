"""The 16 two-input Boolean gates: the single definition used by training, the reference and the HDL.

Numbering follows difflogic: bit ``3 - (2*a + b)`` of the op code is the gate's output for inputs
``(a, b)``.  Everything else here (names, the {1, a, b, ab} coefficients, which inputs a gate reads,
bitwise evaluation) is derived from that rule.
"""

from __future__ import annotations

import numpy as np

NUM_OPS = 16

NAMES = (
    "FALSE", "AND", "A_AND_NOT_B", "A", "NOT_A_AND_B", "B", "XOR", "OR",
    "NOR", "XNOR", "NOT_B", "A_OR_NOT_B", "NOT_A", "NOT_A_OR_B", "NAND", "TRUE",
)

FALSE, AND, A_AND_NOT_B, A, NOT_A_AND_B, B, XOR, OR = range(8)
NOR, XNOR, NOT_B, A_OR_NOT_B, NOT_A, NOT_A_OR_B, NAND, TRUE = range(8, 16)


def output(op: int, a: int, b: int) -> int:
    """The gate's output bit for input bits ``a`` and ``b``."""
    return (op >> (3 - (2 * a + b))) & 1


#: TRUTH[op, a, b]: the truth table of every gate.
TRUTH = np.array([[[output(op, a, b) for b in (0, 1)] for a in (0, 1)] for op in range(NUM_OPS)],
                 dtype=np.int64)

#: COEFFS[op] = (c0, c1, c2, c3) with gate(a, b) = c0 + c1*a + c2*b + c3*a*b for a, b in {0, 1}.
#: Each relaxed gate of difflogic is exactly this polynomial evaluated at real a, b in [0, 1].
COEFFS = np.stack([
    TRUTH[:, 0, 0],
    TRUTH[:, 1, 0] - TRUTH[:, 0, 0],
    TRUTH[:, 0, 1] - TRUTH[:, 0, 0],
    TRUTH[:, 1, 1] - TRUTH[:, 1, 0] - TRUTH[:, 0, 1] + TRUTH[:, 0, 0],
], axis=1)

#: Whether a gate's output depends on input a (resp. b).
READS_A = (TRUTH[:, 1, :] != TRUTH[:, 0, :]).any(axis=1)
READS_B = (TRUTH[:, :, 1] != TRUTH[:, :, 0]).any(axis=1)
#: Whether a gate reads both inputs (the other ops are wires, inversions and constants).
READS_BOTH = READS_A & READS_B


def apply_bitwise(op: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Evaluate gates on packed bit words.

    ``op`` has shape (N,), ``a`` and ``b`` shape (N, words) of unsigned integers holding one sample
    per bit. Row n is gate ``op[n]`` applied bitwise to rows ``a[n]`` and ``b[n]``.
    """
    dtype = a.dtype
    ones = np.array(np.iinfo(dtype).max, dtype=dtype)
    op = np.asarray(op, dtype=np.int64)
    out = np.zeros_like(a)
    na, nb = ~a, ~b
    for ia, va in ((0, na), (1, a)):
        for ib, vb in ((0, nb), (1, b)):
            mask = np.where(TRUTH[op, ia, ib].astype(bool), ones, dtype.type(0))[:, None]
            out |= mask & va & vb
    return out
