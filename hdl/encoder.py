"""Threshold comparators ``x >= T`` against constants, written as plain logic.

Yosys turns a ``>=`` into an ``$alu`` and, on iCE40, a carry chain per comparator: with hundreds of
5-bit comparators the chain start/end cells cost more logic cells than the comparison itself. As
an AND/OR chain the comparator is a function of W bits that ABC packs into ceil((W-1)/3) LUT4s.
"""

from __future__ import annotations

from amaranth.hdl import C


def ge_const(x, threshold: int):
    """1-bit expression ``x >= threshold`` for an unsigned value ``x`` and a constant threshold.

    Scanning from the least significant bit, ``r`` is "the bits so far are >= the threshold's bits
    so far": where the threshold has a 1, ``x`` must have a 1 and the lower part must be >=; where
    it has a 0, a 1 in ``x`` already makes it greater, otherwise the lower part decides.
    """
    width = len(x)
    t = int(threshold)
    if t <= 0:
        return C(1, 1)
    if t >= 1 << width:
        return C(0, 1)
    r = None  # None means constant 1 (the empty comparison is >=)
    for i in range(width):
        if (t >> i) & 1:
            r = x[i] if r is None else (x[i] & r)
        elif r is not None:
            r = x[i] | r
    return r
