"""The classifier head: a pipelined popcount per class, then a pipelined argmax."""

from __future__ import annotations

from amaranth.hdl import C, Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from logicforge.hdl import pipeline
from logicforge.netlist.format import score_width


def class_width(classes: int) -> int:
    """Bits of ``out_class``: enough for classes - 1 (at least 1)."""
    return max(1, (int(classes) - 1).bit_length())


def leaf_popcount(bits: list) -> list:
    """The count of up to 4 one-bit values as a list of bit expressions (LSB first), written with
    XOR/AND only so that each output bit maps to one LUT4 (no carry chain)."""
    if len(bits) == 1:
        return [bits[0]]
    if len(bits) == 2:
        a, b = bits
        return [a ^ b, a & b]
    if len(bits) == 3:
        a, b, c = bits
        return [a ^ b ^ c, (a & b) | (c & (a ^ b))]
    if len(bits) == 4:
        # (a + b) + (c + d) = (2q + p) + (2t + r) with p, r sums and q, t carries of the pairs;
        # p & r, q and t are never two of them 1 except q and t together (count 4).
        a, b, c, d = bits
        p, q, r, t = a ^ b, a & b, c ^ d, c & d
        return [p ^ r, q ^ t ^ (p & r), q & t]
    raise ValueError("a leaf compressor takes 1 to 4 bits")


class ClassifierHead(wiring.Component):
    """Scores and argmax of K groups of G bits.

    Ports:
      * ``in_valid``, ``in_bits`` (K*G): class k's bits are ``in_bits[k*G:(k+1)*G]``, each
        inverted where the constant mask ``invert`` has a one (absorbed into the first LUTs);
      * ``out_valid``, ``out_scores`` (K*S, class 0 in the least significant bits, S =
        ``score_width(G)``), ``out_class``: the smallest k with the maximal score.

    Latency ``pipeline.head_latency(G, K, p)`` cycles (p = ``popcount_levels_per_stage``), one
    sample per clock. The popcount is a level of 4-bit LUT compressors, then a pairwise adder tree;
    a register follows every p of those levels. The argmax is a tournament tree with two stages per
    level (compare, select); scores are delayed to stay aligned with the class. Only the valid
    chain is reset; data registers are reset-less.
    """

    def __init__(self, classes: int, group_size: int, *, popcount_levels_per_stage: int | None = None,
                 invert: int = 0, with_scores: bool = True):
        self.classes = int(classes)
        self.group_size = int(group_size)
        self.invert = int(invert)
        self.with_scores = bool(with_scores)
        self.popcount_levels_per_stage = pipeline.check_popcount_levels_per_stage(popcount_levels_per_stage)
        self.score_width = score_width(group_size)
        self.latency = pipeline.head_latency(group_size, classes, self.popcount_levels_per_stage)
        ports = {
            "in_valid": In(1),
            "in_bits": In(self.classes * self.group_size),
            "out_valid": Out(1),
            "out_class": Out(class_width(classes)),
        }
        if self.with_scores:
            ports["out_scores"] = Out(self.classes * self.score_width)
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        bits = self.in_bits
        if self.invert:
            # one named signal: slicing the operator itself would rebuild it per bit in Amaranth
            bits = Signal(len(self.in_bits), name="class_bits", reset_less=True)
            m.d.comb += bits.eq(self.in_bits ^ self.invert)
        out_valid, out_class, out_scores = build_head(
            m, self.in_valid, bits, self.classes, self.group_size,
            popcount_levels_per_stage=self.popcount_levels_per_stage, with_scores=self.with_scores)
        m.d.comb += [self.out_valid.eq(out_valid), self.out_class.eq(out_class)]
        if self.with_scores:
            m.d.comb += self.out_scores.eq(out_scores)
        return m


def popcount_plan(group_size: int) -> list[list[tuple[int, list[int]]]]:
    """The popcount tree of ``group_size`` bits, level by level: (total, indices of the nodes of the
    level below) per node; a leaf level of ``LEAF_BITS``-input compressors, then pairs."""
    prev = [1] * int(group_size)
    levels = []
    while len(prev) > 1:
        step = pipeline.LEAF_BITS if not levels else 2
        cur = [(sum(prev[j] for j in range(i, min(i + step, len(prev)))),
                list(range(i, min(i + step, len(prev))))) for i in range(0, len(prev), step)]
        levels.append(cur)
        prev = [t for t, _ in cur]
    return levels


def _needs_carry_out(plan, level: int, kids: list[int], total: int) -> bool:
    widths = [plan[level - 1][j][0].bit_length() for j in kids]
    return total.bit_length() > max(widths)


def popcount_encodings(plan) -> list[list[bool]]:
    """Per node, whether it is held in *excess* encoding (the count minus 2**(w-1) in w-bit two's
    complement: the top bit inverted) instead of the plain count.

    An adder whose sum needs one bit more than its operands would end in a bare carry out (a
    pass-through cell and a route to its flip-flop). With its operands in excess encoding it adds
    them sign-extended instead, and its top bit is an ordinary sum LUT in the chain: the excess
    encodings of x and y (w bits each), sign-extended, add up to the excess encoding of x + y
    (w + 1 bits). The final node is plain (the argmax reads it), and every conversion is an
    inverted top bit, free in the LUT that produces it."""
    enc = [[False] * len(level) for level in plan]
    for level in range(len(plan) - 1, 0, -1):
        for n, (total, kids) in enumerate(plan[level]):
            if len(kids) == 1:
                enc[level - 1][kids[0]] = enc[level][n]
            elif _needs_carry_out(plan, level, kids, total):
                for j in kids:
                    enc[level - 1][j] = True
    return enc


def _add(prev, prev_plan, prev_excess, kids, width):
    """The adder of two nodes as ``popcount_encodings`` plans it: (sum, whether it is excess)."""
    (x, y), (tx, ty) = (prev[j] for j in kids), (prev_plan[j][0] for j in kids)
    wx, wy = tx.bit_length(), ty.bit_length()
    if width <= max(wx, wy):  # no carry out: plain operands, the top bit is a sum bit already
        return (x + y)[:width], False
    # this tree pairs equal widths wherever a carry out is needed (checked for every G in the tests)
    assert wx == wy, "a carry out from operands of unequal widths"
    return (Cat(x, x[wx - 1]) + Cat(y, y[wy - 1]))[:width], True


def build_head(m: Module, in_valid, in_bits, classes: int, group_size: int, *,
               popcount_levels_per_stage: int | None = None, with_scores: bool = True):
    """Add the head's logic to module ``m``.

    Returns (out_valid, out_class, out_scores) values with the contract of ``ClassifierHead``;
    ``out_scores`` is None with ``with_scores=False`` (no delay registers for the scores).
    """
    K, G, S = int(classes), int(group_size), score_width(group_size)
    per_stage = pipeline.check_popcount_levels_per_stage(popcount_levels_per_stage)
    P = pipeline.popcount_levels(G)
    A = pipeline.argmax_levels(K)
    lat = pipeline.head_latency(G, K, per_stage)

    # valid chain (the only reset registers)
    if lat:
        vpipe = Signal(lat, name="head_valid")
        m.d.sync += vpipe.eq(Cat(in_valid, vpipe[:-1]))
        out_valid = vpipe[-1]
    else:
        out_valid = in_valid

    # popcount per class: nodes are (value, max count)
    def level_signal(domain_is_sync: bool, width: int, name: str, value):
        s = Signal(width, name=name, reset_less=True)
        if domain_is_sync:
            m.d.sync += s.eq(value)
        else:
            m.d.comb += s.eq(value)
        return s

    # Right-hand candidates of the argmax (odd positions of each level) are held inverted, so its
    # compare ``left >= right`` is a plain carry chain (left + ~right + 1 carries out), with no
    # LUT of inverters in front of it; the inversion is free in the LUT that produces the value.
    def right(level_pos: int, count: int) -> bool:
        return count > 1 and level_pos % 2 == 1

    plan = popcount_plan(G)
    excess = popcount_encodings(plan)
    stored = []  # per class: the popcount register (inverted for right-hand classes)
    for k in range(K):
        inv = right(k, K)
        prev = [in_bits[k * G + i] for i in range(G)]
        level = 0
        for level_nodes, level_excess in zip(plan, excess):
            level += 1
            registered = level % per_stage == 0 or level == P
            final = level == P
            prev_plan = plan[level - 2] if level > 1 else None
            nxt = []
            for n, ((total, kids), exc) in enumerate(zip(level_nodes, level_excess)):
                width = total.bit_length()
                if level == 1:  # leaf compressor (true count)
                    value, value_excess = Cat(*leaf_popcount([prev[j] for j in kids])), False
                elif len(kids) == 1:  # a lone node passes through, already in the wanted encoding
                    value, value_excess = prev[kids[0]], exc
                else:
                    value, value_excess = _add(prev, prev_plan, excess[level - 2], kids, width)
                if exc != value_excess:  # flip the top bit (free: it is a LUT's output)
                    value = Cat(value[:width - 1], ~value[width - 1])
                if final and inv:
                    value = ~value
                tag = f"pc{k}_l{level}_{n}"
                nxt.append(level_signal(registered, width, tag, value))
            prev = nxt
        nodes = [(prev[0], G)]
        assert level == P
        score = Signal(S, name=f"score{k}")
        if P == 0 and inv:  # a single bit: no register to fold the inversion into
            m.d.comb += score.eq(~nodes[0][0])
        else:
            m.d.comb += score.eq(nodes[0][0])
        stored.append(score)
    scores = [~v if right(k, K) else v for k, v in enumerate(stored)]  # the true scores

    # argmax tournament over (score, index); the left candidate has the lower indices and wins ties.
    # Each level is two register stages: compare (the one-bit ``left >= right`` is registered next to
    # both candidates) and select (a 2:1 multiplexer per bit into the winner's register, which is
    # inverted where the winner is a right-hand candidate of the next level).
    cw = class_width(K)
    cands = [(stored[k], C(k, cw)) for k in range(K)]  # a right-hand candidate's score is inverted
    level = 0
    while len(cands) > 1:
        level += 1
        nxt = []
        n_next = (len(cands) + 1) // 2
        for i in range(0, len(cands), 2):
            pair = cands[i:i + 2]
            tag = f"am_l{level}_{i // 2}"
            inv_out = right(i // 2, n_next)
            s = Signal(S, name=f"{tag}_score", reset_less=True)
            c = Signal(cw, name=f"{tag}_class", reset_less=True)
            if len(pair) == 2:
                (ls, lc), (rsn, rc) = pair
                regs = []
                for nm, v in (("ls", ls), ("lc", lc), ("rsn", rsn), ("rc", rc)):
                    r = Signal(len(v), name=f"{tag}_{nm}", reset_less=True)
                    m.d.sync += r.eq(v)
                    regs.append(r)
                right_wins = Signal(name=f"{tag}_right_wins", reset_less=True)
                # ls >= rs  <=>  ls + ~rs + 1 >= 2**S: the carry out of (2 ls + 1) + (2 ~rs + 1).
                # Its complement is registered: the inverting LUT takes the carry on its I3 and
                # sits at the end of the chain with the flip-flop (a bare carry out needs a
                # pass-through cell and a route to a flip-flop elsewhere).
                m.d.sync += right_wins.eq(~(Cat(C(1, 1), ls) + Cat(C(1, 1), rsn))[S + 1])
                rls, rlc, rrsn, rrc = regs
                if inv_out:
                    m.d.sync += s.eq(Mux(right_wins, rrsn, ~rls))
                else:
                    m.d.sync += s.eq(Mux(right_wins, ~rrsn, rls))
                if isinstance(lc, Const) and isinstance(rc, Const):
                    # first level: constant indices, so the winner's index is a copy of
                    # ``right_wins`` in the bits where they differ (a plain register, no LUT)
                    lv, rv = lc.value, rc.value
                    m.d.sync += c.eq(Cat(*(C((lv >> j) & 1, 1) if (lv >> j) & 1 == (rv >> j) & 1
                                           else (right_wins if (rv >> j) & 1 else ~right_wins)
                                           for j in range(cw))))
                else:
                    m.d.sync += c.eq(Mux(right_wins, rrc, rlc))
            else:  # an odd candidate (always a left-hand one, so held true) waits both stages
                d1s = Signal(S, name=f"{tag}_s1", reset_less=True)
                d1c = Signal(cw, name=f"{tag}_c1", reset_less=True)
                m.d.sync += [d1s.eq(pair[0][0]), d1c.eq(pair[0][1]), c.eq(d1c)]
                m.d.sync += s.eq(~d1s if inv_out else d1s)
            nxt.append((s, c))
        cands = nxt
    assert level == A

    if not with_scores:
        return out_valid, cands[0][1], None
    # scores delayed by the argmax stages
    delayed = Cat(*scores)
    for i in range(pipeline.argmax_stages(K)):
        d = Signal(K * S, name=f"scores_d{i + 1}", reset_less=True)
        m.d.sync += d.eq(delayed)
        delayed = d
    return out_valid, cands[0][1], delayed
