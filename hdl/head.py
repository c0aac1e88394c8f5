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


# -- the serial head ------------------------------------------------------------------------------

def build_shift_chains(m: Module, load, class_bits: list[list], *, name: str = "chain",
                       fanout: int | None = None, length: int | None = None) -> list:
    """K shift chains, one per class, in module ``m``; returns each chain's tail bit (the bit the
    counter adds this cycle; a constant 0 for an empty chain).

    ``class_bits[k]`` lists class k's (non-constant) bit expressions. Chain k is a reset-less
    register of ``length`` bits (default: the longest list; shorter lists are padded at the top
    with 0s) named ``{name}{k}``: at a clock edge with ``load`` high it takes the expressions,
    otherwise it rotates one place towards bit 0 (bit 0 re-enters at the top), so its bit 0 carries
    the expressions in the ``length`` cycles after the load, then again. Each flip-flop's next state
    is ``load ? expr : next bit``, so a chain bit and the LUT that computes ``expr`` (e.g. the last
    gate level) share one LUT4 where ``expr`` reads two inputs; no constant enters the multiplexer
    (``load ? expr : 0`` would become a flip-flop reset by an inverted ``load``, a LUT and a route
    more), except the padding's ``load ? 0 : next`` (reset by ``load`` itself).
    ``load`` may be a list of equal copies: flip-flop j (counting through all chains in order) then
    uses copy ``j // fanout``.
    """
    loads = list(load) if isinstance(load, (list, tuple)) else [load]
    n = int(length) if length is not None else max((len(b) for b in class_bits), default=0)
    assert all(len(b) <= n for b in class_bits)
    per = int(fanout) if fanout else max(1, -(-n * len(class_bits) // len(loads)))
    tails = []
    j = 0
    for k, bits in enumerate(class_bits):
        if not bits:
            tails.append(C(0, 1))
            continue
        bits = list(bits) + [C(0, 1)] * (n - len(bits))
        ch = Signal(n, name=f"{name}{k}", reset_less=True)
        nxt = []
        for i, b in enumerate(bits):
            above = ch[i + 1] if i + 1 < n else ch[0]
            nxt.append(Mux(loads[min(j // per, len(loads) - 1)], b, above))
            j += 1
        m.d.sync += ch.eq(Cat(*nxt))
        tails.append(ch[0])
    return tails


def build_serial_scorer(m: Module, load, tails: list, classes: int, group_size: int, *,
                        presets=None, with_scores: bool = True):
    """The counters, argmax scan and control of the serial head, in module ``m``.

    ``load`` is high in the cycle the chains load (clock edge L); ``tails[k]`` is chain k's bit 0,
    which carries class k's bits one per cycle in the cycles L+1 .. L+G (then anything: only
    those G cycles are counted).
    ``presets[k]`` (default 0) is added to class k's score: the constant-1 bits left out of its chain.

    Returns (out_valid, out_class, out_scores or None, busy): ``out_valid`` is a registered one-cycle
    pulse in cycle L + G + 2K + 3 (``pipeline.serial_head_latency`` after the load cycle);
    ``out_class`` (the smallest k with the maximal score) and ``out_scores`` (K*S bits, class 0
    lowest) are valid in that cycle and stay until the next load. ``busy`` is high in cycles
    L+1 .. L+G+2K+2: a load is allowed whenever it is low (also in the ``out_valid`` cycle); a load
    while busy abandons the sample in progress (its ``out_valid`` never comes).

    Structure: the K tails registered next to the counters (cleared by the load), K counters of
    S = ``score_width(G)`` bits (``count + tail``, one short carry chain), set to the preset by
    the load; they hold the scores from then on. After the G shift cycles, one *settle* cycle
    (``pipeline.SERIAL_SETTLE_STAGES``) copies the counters into the scan register (``ring``),
    then the scan takes two cycles per class (``pipeline.SERIAL_SCAN_CYCLES_PER_CLASS``):
    *compare* registers ``ring0 > best`` (the carry out of ``ring0 + ~best``, a plain S-bit carry
    chain: ``best`` is held inverted), *select* takes ``ring0`` into ``best``/``best_class`` where
    that bit is set (strictly greater, so ties keep the smaller index) and rotates the ring (class
    k+1's score moves to k). Control: two down counters whose sign bit ends the shift and scan
    phases, and the reset flags ``counting``, ``settle``, ``scan``, ``select``, ``done``; all other
    registers are reset-less.
    """
    K, G, S = int(classes), int(group_size), score_width(group_size)
    cw = class_width(K)
    presets = [0] * K if presets is None else [int(p) for p in presets]
    # ``load`` may be two equal copies: the first for the counters and tails, the second for
    # the control and ``best``
    loads = list(load) if isinstance(load, (list, tuple)) else [load]
    load_data, load = loads[0], loads[-1]

    counting = Signal(name="sh_counting")
    settle = Signal(name="sh_settle")  # the cycle the final counts are copied into the scan register
    scan = Signal(name="sh_scan")
    done = Signal(name="sh_done")
    select = Signal(name="sh_select")  # the scan's select cycle (else compare); reset, see below
    w1 = max(G - 1, 1).bit_length() + 1
    w2 = max(K - 2, 1).bit_length() + 1
    shift_left = Signal(w1, name="sh_shift_left", reset_less=True)  # negative in cycle L + G + 1
    scan_left = Signal(w2, name="sh_scan_left", reset_less=True)  # negative in the last select cycle
    index = Signal(cw, name="sh_index", reset_less=True)  # the class counter 0 holds while scanning
    best_n = Signal(S, name="sh_best_n", reset_less=True)  # the best score so far, inverted
    best_class = Signal(cw, name="sh_best_class", reset_less=True)
    # registered count0 <= best: the complement of the carry out of count0 + ~best, so the inverting
    # LUT takes the carry on its I3 and packs with this flip-flop at the end of the chain (a bare
    # carry out needs a pass-through cell and a route: 89.2 MHz on the Fashion-MNIST up5k top)
    not_greater = Signal(name="sh_not_greater", reset_less=True)
    counters = [Signal(S, name=f"sh_count{k}", reset_less=True) for k in range(K)]
    # the scores as the scan sees them: a copy of the counters that rotates (class k+1 moves to k)
    ring = [Signal(S, name=f"sh_ring{k}", reset_less=True) for k in range(K)]
    # the chains' last bits, registered next to the counters (SERIAL_TAIL_STAGES); cleared by the
    # load, so a chain's old contents never reach the new counts
    tail_r = Signal(K, name="sh_tails", reset_less=True)
    # the G counted cycles: counting and not yet at the end (the chains rotate on)
    counted = Signal(name="sh_counted")
    m.d.comb += counted.eq(counting & ~shift_left[-1])
    with m.If(load_data):
        m.d.sync += tail_r.eq(0)
    with m.Else():
        m.d.sync += tail_r.eq(Cat(*(t & counted for t in tails)))
    # a counter's next state is the preset at a load (a synchronous set/reset of its flip-flops),
    # else count + tail: the sum LUTs of one carry chain, each packed with its flip-flop
    with m.If(load_data):
        m.d.sync += [c.eq(p) for c, p in zip(counters, presets)]
    with m.Else():
        m.d.sync += [c.eq((c + tail_r[k])[:S]) for k, c in enumerate(counters)]
    # the ring's enable is a register of its own, set a cycle ahead (the cycle before settle or a
    # select cycle): a flip-flop straight into the enable net, no LUT of the flags before it
    # (measured: settle | select as a LUT, then the global buffer, held the digits top at 95.8 MHz)
    ring_en = Signal(name="sh_ring_en")
    with m.If(ring_en):
        m.d.sync += [r.eq(Mux(settle, c, ring[(k + 1) % K])) for k, (r, c) in enumerate(zip(ring, counters))]

    # ``select`` is only ever high inside the scan (it is reset, starts low at a load, and the
    # scan ends on a select cycle, toggling it low), so it alone marks the select cycles: one
    # register, no LUT
    m.d.sync += [done.eq(select & scan_left[-1]),
                 not_greater.eq(~(Cat(ring[0], C(0, 1)) + Cat(best_n, C(0, 1)))[S])]
    # settle or select in the next cycle (see below): settle follows the last counting cycle,
    # select every compare cycle of the scan
    m.d.sync += ring_en.eq(~load & ((counting & shift_left[-1]) | (scan & ~select)))
    with m.If(load):
        m.d.sync += [counting.eq(1), settle.eq(0), scan.eq(0), select.eq(0), shift_left.eq((G - 1) % (1 << w1)),
                     scan_left.eq((K - 2) % (1 << w2)), index.eq(0), best_n.eq((1 << S) - 1),
                     best_class.eq(0)]
    with m.Else():
        with m.If(counting):
            m.d.sync += shift_left.eq(shift_left - 1)
            with m.If(shift_left[-1]):
                m.d.sync += [counting.eq(0), settle.eq(1)]
        with m.If(settle):
            m.d.sync += [settle.eq(0), scan.eq(1)]
        with m.If(scan):
            m.d.sync += select.eq(~select)
        with m.If(select):
            m.d.sync += [scan_left.eq(scan_left - 1), index.eq(index + 1)]
            with m.If(scan_left[-1]):
                m.d.sync += scan.eq(0)
            with m.If(~not_greater):
                m.d.sync += [best_n.eq(~ring[0]), best_class.eq(index)]
    busy = Signal(name="sh_busy")
    m.d.comb += busy.eq(counting | settle | scan)
    scores = Cat(*counters) if with_scores else None
    return done, best_class, scores, busy


def _serial_out_ports(classes: int, group_size: int, with_scores: bool) -> dict:
    """The output ports a serial head shares: ``out_valid``, ``out_class``, ``busy`` and, with
    ``with_scores``, ``out_scores`` (K * ``score_width(G)`` bits)."""
    ports = {"out_valid": Out(1), "out_class": Out(class_width(classes)), "busy": Out(1)}
    if with_scores:
        ports["out_scores"] = Out(int(classes) * score_width(group_size))
    return ports


class SerialScorer(wiring.Component):
    """The serial head behind its shift chains: counters, argmax scan and control
    (``build_serial_scorer``; a component so the board top's synthesis counts its cells as the head).

    Ports: ``load`` (``load_copies`` equal bits; with two, the first loads the counters, the second
    the control), ``tails`` (K: chain k's bit 0), ``out_valid``, ``out_class``,
    ``out_scores`` (K*S, with ``with_scores``), ``busy``. Timing as ``build_serial_scorer``.
    """

    def __init__(self, classes: int, group_size: int, *, presets=None, with_scores: bool = True,
                 load_copies: int = 1):
        self.classes, self.group_size = int(classes), int(group_size)
        self.load_copies = int(load_copies)
        self.presets = None if presets is None else list(presets)
        self.with_scores = bool(with_scores)
        self.score_width = score_width(group_size)
        super().__init__({"load": In(self.load_copies), "tails": In(self.classes),
                          **_serial_out_ports(self.classes, group_size, self.with_scores)})

    def elaborate(self, platform):
        m = Module()
        out_valid, out_class, out_scores, busy = build_serial_scorer(
            m, [self.load[i] for i in range(self.load_copies)], [self.tails[k] for k in range(self.classes)],
            self.classes, self.group_size,
            presets=self.presets, with_scores=self.with_scores)
        m.d.comb += [self.out_valid.eq(out_valid), self.out_class.eq(out_class), self.busy.eq(busy)]
        if self.with_scores:
            m.d.comb += self.out_scores.eq(out_scores)
        return m


class SerialHead(wiring.Component):
    """Scores and argmax of K groups of G bits, one bit per class per clock (far fewer logic cells
    than ``ClassifierHead``; for samples that arrive at least ``pipeline.serial_interval(G, K)``
    cycles apart).

    Ports:
      * ``in_valid``, ``in_bits`` (K*G): class k's bits are ``in_bits[k*G:(k+1)*G]``, each inverted
        where the constant mask ``invert`` has a one; read only in the cycle ``in_valid`` is high;
      * ``out_valid`` (a one-cycle pulse), ``out_class`` (the smallest k with the maximal score),
        ``out_scores`` (K*S, class 0 lowest, with ``with_scores``): valid with ``out_valid`` and held
        until the next sample's ``in_valid``;
      * ``busy``: high from the cycle after ``in_valid`` until the cycle before ``out_valid``; a new
        ``in_valid`` is allowed whenever ``busy`` is low. One while busy abandons the sample in
        progress (only the new one comes out).

    Latency ``pipeline.head_latency(G, K, head="serial") = G + 2K + 3`` cycles from ``in_valid`` to
    ``out_valid``, samples at least ``pipeline.serial_interval(G, K) = G + 2K + 3`` cycles apart.
    Registered: the K chains of G bits (``build_shift_chains``, loaded from ``in_bits``), the K
    counters, ``best``/``best_class``, the control counters (reset-less) and the three reset
    flags (``build_serial_scorer``).
    """

    def __init__(self, classes: int, group_size: int, *, invert: int = 0, with_scores: bool = True):
        self.classes, self.group_size = int(classes), int(group_size)
        self.invert = int(invert)
        self.with_scores = bool(with_scores)
        self.score_width = score_width(group_size)
        self.latency = pipeline.head_latency(group_size, classes, head="serial")
        self.interval = pipeline.serial_interval(group_size, classes)
        super().__init__({"in_valid": In(1), "in_bits": In(self.classes * self.group_size),
                          **_serial_out_ports(self.classes, group_size, self.with_scores)})

    def elaborate(self, platform):
        m = Module()
        K, G = self.classes, self.group_size
        bits = [[self.in_bits[k * G + i] ^ ((self.invert >> (k * G + i)) & 1) for i in range(G)]
                for k in range(K)]
        tails = build_shift_chains(m, self.in_valid, bits)
        out_valid, out_class, out_scores, busy = build_serial_scorer(
            m, self.in_valid, tails, K, G, with_scores=self.with_scores)
        m.d.comb += [self.out_valid.eq(out_valid), self.out_class.eq(out_class), self.busy.eq(busy)]
        if self.with_scores:
            m.d.comb += self.out_scores.eq(out_scores)
        return m
