"""One gate as an Amaranth expression, derived from ``gates.TRUTH`` (no hand-written tables)."""

from __future__ import annotations

from amaranth.hdl import Const

from logicforge.netlist.gates import READS_A, READS_B, TRUTH


def _literal(x, positive: int):
    return x if positive else ~x


def gate_expr(op: int, a, b):
    """``op`` applied to 1-bit values ``a`` and ``b``, in the smallest form its truth table allows:
    a constant, (an inversion of) one input, an AND/OR of two literals, or an XOR/XNOR."""
    t = TRUTH[op]
    if not READS_A[op] and not READS_B[op]:
        return Const(int(t[0, 0]), 1)
    if not READS_B[op]:
        return _literal(a, t[1, 0])
    if not READS_A[op]:
        return _literal(b, t[0, 1])
    ones = [(ia, ib) for ia in (0, 1) for ib in (0, 1) if t[ia, ib]]
    if len(ones) == 1:  # one minterm: an AND of literals
        ia, ib = ones[0]
        return _literal(a, ia) & _literal(b, ib)
    if len(ones) == 3:  # one maxterm: an OR of literals
        (ia, ib), = [(ia, ib) for ia in (0, 1) for ib in (0, 1) if not t[ia, ib]]
        return _literal(a, 1 - ia) | _literal(b, 1 - ib)
    # two minterms and both inputs read: XOR or XNOR
    return (a ^ b) if t[0, 0] == 0 else ~(a ^ b)


def lut_expr(table: int, pins: list):
    """A table node (``netlist/lut.py``) of 1-bit values ``pins``: bit ``sum(2**i * pins[i])`` of
    ``table``, one LUT of ``len(pins)`` inputs.

    Written as an OR of AND-minterms (of the table's ones, or, inverted, of its zeros, whichever are
    fewer), not as a select from the constant: yosys turns a select into a multiplexer tree, and
    where a branch of it is constant ``opt_dff`` moves that branch into the next flip-flop's
    synchronous set/reset (SB_DFFSS/SB_DFFSR), whose pin is shared by the 8 cells of a logic block:
    a second LUT level and a long route (measured: docs/hardware.md, "LUT4 nodes on the iCE40")."""
    n = len(pins)
    ones = [m for m in range(1 << n) if (int(table) >> m) & 1]
    invert = 2 * len(ones) > 1 << n
    terms = [m for m in range(1 << n) if (m in ones) != invert]
    if not terms:
        return Const(int(invert), 1)
    total = None
    for m in terms:
        term = None
        for i, p in enumerate(pins):
            lit = _literal(p, (m >> i) & 1)
            term = lit if term is None else term & lit
        total = term if total is None else total | term
    return ~total if invert else total
