"""``StreamingEncoder``: the threshold encoder for features that arrive one at a time.

A board top receives a sample serially (UART bytes), so it encodes each feature as it arrives
instead of buffering all F * W bits: the feature is compared against only *its* live thresholds,
read from a small ROM indexed by the feature counter, and only the live encoded bits are written,
straight into the register that feeds a ``LogicNetCore(pre_encoded=True)``.

Built for a 100 MHz iCE40: between two registers there is at most one LUT4 and no carry chain.
The W-bit compare is a tree of 2-bit compares and combines, one register level per tree level
(features are hundreds of cycles apart, so the extra cycles are free), and each encoded bit's own
LUT4 decides whether it is written (no enable LUT per feature).

:func:`compare_plan` and :func:`line_plan` describe the structure; the component builds exactly
that and the cost model (``boards/estimate.py``) counts it.
"""

from __future__ import annotations

from amaranth.hdl import C, Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from logicforge.errors import LogicforgeError
from logicforge.hdl.pipeline import REPLICA_ATTR

#: A registered compare result or decoded line drives at most this many encoded bits (replicas).
MAX_FANOUT = 32
#: Width of the first feature-counter chunk, whose decoder also carries the strobe (3 bits and the
#: strobe: one LUT4); the others are 4 bits.
FIRST_CHUNK_BITS = 3
CHUNK_BITS = 4
#: Value bits per leaf of the compare tree: a 2-bit against 2-bit compare is one LUT4.
COMPARE_CHUNK_BITS = 2
#: Register levels after the compare tree: its result is registered once, then copied (plain
#: flip-flops) per ``MAX_FANOUT`` users, so that the fan-out happens at flip-flops; copies loaded
#: from one shared LUT add a second route to the path (the Fashion-MNIST top's critical path).
FANOUT_STAGES = 1


def compare_leaves(feature_width: int) -> int:
    """Leaves of the compare tree of a W-bit value: ceil(W / 2)."""
    return -(-int(feature_width) // COMPARE_CHUNK_BITS)


def compare_stages(feature_width: int) -> int:
    """Register levels of the compare tree: the leaves, then ceil(log2 leaves) combine levels."""
    return 1 + (compare_leaves(feature_width) - 1).bit_length()


def stream_encoder_latency(feature_width: int) -> int:
    """Cycles from the ``valid`` of a sample's last feature to ``out_valid``: the compare tree,
    the copies of its result, then the write of the encoded bits."""
    return compare_stages(feature_width) + FANOUT_STAGES + 1


def min_valid_spacing(feature_width: int) -> int:
    """Cycles from a ``valid`` (or ``restart``) to the next ``valid``, at least: the feature counter
    moves when the compare's copies are loaded, then the threshold ROM's word is registered
    twice."""
    return compare_stages(feature_width) + FANOUT_STAGES + 2


def compare_plan(feature_width: int) -> list[list[int]]:
    """The compare tree, level by level (the last level is the result, replicated): each entry is
    the number of outputs of one node, 1 (``ge``) or 2 (``gt``, ``eq``). A level's node is a LUT4
    per output, except a node carried over unchanged from the level before (an odd one out),
    which is a plain register; :func:`compare_costs` counts both."""
    n = compare_leaves(feature_width)
    levels = [[1] + [2] * (n - 1)]
    while len(levels[-1]) > 1:
        prev = levels[-1]
        levels.append([prev[i] if i + 1 == len(prev) and i % 2 == 0 else (1 if i == 0 else 2)
                       for i in range(0, len(prev), 2)])
    return levels


def compare_costs(feature_width: int) -> tuple[int, int]:
    """(LUT4, flip-flops) of one compare tree without its result register."""
    levels = compare_plan(feature_width)
    luts = ffs = 0
    for depth, level in enumerate(levels[:-1]):
        for i, outs in enumerate(level):
            ffs += outs
            carried = depth > 0 and i == len(level) - 1 and len(levels[depth - 1]) % 2 == 1
            luts += 0 if carried else outs
    return luts, ffs


def _chunks(bits: int) -> list[tuple[int, int]]:
    """(low bit, width) of each chunk of a ``bits``-wide counter: first 3 bits, then 4 each."""
    out, lo = [], 0
    while lo < bits or not out:
        w = FIRST_CHUNK_BITS if not out else CHUNK_BITS
        w = max(0, min(w, bits - lo))
        out.append((lo, w))
        lo += w
        if w == 0:
            break
    return out


def counter_bits(features: int) -> int:
    return max(1, (max(int(features), 2) - 1).bit_length())


def slot_table(features: int, feature_width: int, comparators):
    """How the encoder lays out thresholds.

    Returns (slots, constants): ``slots[f]`` is the list of (threshold, output bit) of feature f in
    ROM slot order, ``constants`` maps output bits whose threshold makes them constant (``T <= 0``:
    1, ``T >= 2**W``: 0) to their value. Output bit i is ``comparators[i]``.
    """
    W = int(feature_width)
    slots: list[list[tuple[int, int]]] = [[] for _ in range(int(features))]
    constants: dict[int, int] = {}
    for i, (f, t) in enumerate(comparators):
        t = int(t)
        if t <= 0:
            constants[i] = 1
        elif t >= 1 << W:
            constants[i] = 0
        else:
            slots[int(f)].append((t, i))
    return slots, constants


def line_plan(features: int, slots) -> dict:
    """The write stage's decoded feature-counter lines.

    The counter's chunks form at most two groups: the first chunk (its lines carry the strobe) and
    all the other chunks. A line of the second group is that group's value decoded directly (one
    chunk) or, with two to four chunks, a registered AND of per-chunk lines (``pre``) registered a
    cycle earlier. A line exists only for a value that live features use, in copies of at most
    ``MAX_FANOUT`` encoded-bit loads. Two groups keep every encoded bit's write in its own LUT4 (its
    value, the new compare result, two lines) with no flip-flop clock enable: an iCE40 logic block's
    eight cells share one enable, and the 45 enable nets of a third line group (978 flip-flops)
    made the Fashion-MNIST top unplaceable (docs/hardware.md).

    Returns ``chunks``, ``groups`` (lists of chunk indices), ``pre`` (sorted (chunk, value) pairs)
    and ``lines`` (per group: {key tuple: [features of copy 0, of copy 1, ...]}).
    """
    chunks = _chunks(counter_bits(features))
    rest = list(range(1, len(chunks)))
    groups = [[0]] + ([rest] if rest else [])
    if len(rest) > 4:
        raise LogicforgeError(f"the streaming encoder takes up to 2**19 features, got {features}")

    def value(c: int, f: int) -> int:
        lo, w = chunks[c]
        return (f >> lo) & ((1 << w) - 1)

    live = [f for f, slot in enumerate(slots) if slot]
    pre = sorted({(c, value(c, f)) for g in groups if len(g) > 1 for c in g for f in live})
    lines = []
    for g in groups:
        by_key: dict[tuple, list[list[int]]] = {}
        loads: dict[tuple, int] = {}
        for f in live:
            key = tuple(value(c, f) for c in g)
            copies = by_key.setdefault(key, [])
            n = len(slots[f])
            if not copies or loads[key] + n > MAX_FANOUT:
                copies.append([])
                loads[key] = 0
            copies[-1].append(f)
            loads[key] += n
        lines.append(by_key)
    return {"chunks": chunks, "groups": groups, "pre": pre, "lines": lines}


def _leaf(v, t, lowest: bool):
    """Compare value bits ``v`` with threshold bits ``t`` (1 or 2 bits each, one LUT4 per output):
    ``[ge]`` for the lowest leaf, else ``[gt, eq]``."""
    if len(v) == 1:
        gt, eq, ge = v & ~t, ~(v ^ t), v | ~t
    else:
        hi_eq = ~(v[1] ^ t[1])
        hi_gt = v[1] & ~t[1]
        gt = hi_gt | (hi_eq & v[0] & ~t[0])
        eq = hi_eq & ~(v[0] ^ t[0])
        ge = hi_gt | (hi_eq & (v[0] | ~t[0]))
    return [ge] if lowest else [gt, eq]


def _combine(lo, hi):
    """Combine the result of lower bits ``lo`` with that of the next higher bits ``hi`` = [gt, eq]
    (one LUT4 per output): ``[ge]`` if ``lo`` is ``[ge]``, else ``[gt, eq]``."""
    gt_h, eq_h = hi
    if len(lo) == 1:
        return [gt_h | (eq_h & lo[0])]
    return [gt_h | (eq_h & lo[0]), eq_h & lo[1]]


def compare_tree(m: Module, value, thr, prefix: str):
    """Add the registered compare tree of ``value >= thr`` (:func:`compare_plan`: a register level
    per tree level, then the result's register) to ``m``; return the result register. Its signals
    are named ``<prefix>_l<level>_...`` and ``<prefix>_result``."""
    W = len(value)
    nodes = [_leaf(value[lo:lo + COMPARE_CHUNK_BITS], thr[lo:lo + COMPARE_CHUNK_BITS], lowest=lo == 0)
             for lo in range(0, W, COMPARE_CHUNK_BITS)]
    level = 0
    while len(nodes) > 1:
        regs = []
        for i, node in enumerate(nodes):
            names = ("ge",) if len(node) == 1 else ("gt", "eq")
            r = [Signal(name=f"{prefix}_l{level}_{i}_{n}", reset_less=True) for n in names]
            m.d.sync += [a.eq(b) for a, b in zip(r, node)]
            regs.append(r)
        nodes = [(_combine(regs[i], regs[i + 1]) if i + 1 < len(regs) else regs[i])
                 for i in range(0, len(regs), 2)]
        level += 1
    result = Signal(name=f"{prefix}_result", reset_less=True)
    m.d.sync += result.eq(nodes[0][0])
    return result


class ThresholdEncoder(wiring.Component):
    """What the board top's encoders share (:class:`StreamingEncoder`,
    :class:`~logicforge.hdl.shift_encoder.ShiftEncoder`): the layout of the comparators
    (``slots``, ``constants``, ``max_slots``, ``live_features``) and the ports of their one
    contract (``valid``, ``value``, ``restart`` in; ``last``, ``out_bits``, ``out_valid`` and, with
    ``valid_copies``, ``out_valid_copies`` out; see :class:`StreamingEncoder`). A subclass sets
    ``latency``, ``min_spacing`` and ``hold_margin``."""

    def __init__(self, features: int, feature_width: int, comparators, *, valid_copies: int = 0):
        self.features = int(features)
        self.feature_width = int(feature_width)
        self.comparators = [(int(f), int(t)) for f, t in comparators]
        self.slots, self.constants = slot_table(self.features, self.feature_width, self.comparators)
        self.max_slots = max((len(s) for s in self.slots), default=0)
        self.live_features = sum(1 for s in self.slots if s)
        self.compare_stages = compare_stages(self.feature_width)
        self.valid_copies = int(valid_copies)
        ports = {
            "valid": In(1),
            "value": In(self.feature_width),
            "restart": In(1),
            "last": Out(1),
            "out_bits": Out(len(self.comparators)),
            "out_valid": Out(1),
        }
        if self.valid_copies:
            ports["out_valid_copies"] = Out(self.valid_copies)
        super().__init__(ports)


class StreamingEncoder(ThresholdEncoder):
    """Encode features arriving one per ``valid`` into the comparator bits ``x[f] >= T``.

    Ports (domain ``sync``):
      * ``valid`` (in, 1) and ``value`` (in, W): the next feature of the current sample (feature 0
        first). Two ``valid`` pulses must be at least ``min_valid_spacing(W)`` cycles apart
        (``self.min_spacing``; 6 for W = 5..8), and the first one as long after ``restart`` (the
        feature counter moves when the compare is done, then the threshold ROM's word is
        registered twice; a UART byte takes hundreds of cycles). ``value`` is read only in the
        ``valid`` cycle.
      * ``restart`` (in, 1): forget the partial sample; the next ``valid`` is feature 0 again.
        It must not coincide with ``valid``, and must be given once after reset (the feature
        counter itself is not reset, to keep the reset net out of its logic; it returns to 0 the
        cycle after ``restart``). Features still in the compare tree are dropped (a sample whose
        last ``valid`` came less than ``latency`` cycles before ``restart`` gets no
        ``out_valid``).
      * ``last`` (out, 1): the next ``valid`` completes a sample (the counter is at F - 1).
      * ``out_bits`` (out, L = ``len(comparators)``): bit i is ``x[f] >= T`` for
        ``comparators[i] = (f, T)``, straight from flip-flops (or a constant for T <= 0 and
        T >= 2**W); a bit changes only when its feature is written.
      * ``out_valid`` (out, 1): high for one cycle, ``latency = stream_encoder_latency(W)`` cycles
        after the ``valid`` of a sample's last feature; ``out_bits`` then hold that whole sample.
      * ``out_valid_copies`` (out, ``valid_copies``; only with ``valid_copies`` > 0): copies of
        ``out_valid`` from flip-flops of their own (``REPLICA_ATTR``), the same value every cycle,
        for a consumer with a large fan-out (the serial head's ``load``, ``LogicNetCore``'s
        ``in_valid_copies``).

    Structure: the feature counter addresses a ROM whose word f holds feature f's live thresholds
    (slot s: bits ``[s*W, (s+1)*W)``, at most ``max_slots`` slots), read and registered every
    cycle. Per slot, the compare ``value >= threshold`` is a tree (:func:`compare_plan`): a leaf
    level of 2-bit compares (``gt``/``eq``, ``ge`` for the lowest bits), then pairwise combines,
    each level registered; the result is registered, then copied into plain flip-flops
    (``FANOUT_STAGES``) so that no copy drives more than ``MAX_FANOUT`` bits. The strobe rides
    along; as it leaves the tree the counter's decoded lines are registered (:func:`line_plan`;
    the first group with the strobe) and the counter moves on. The write: each encoded bit is a
    flip-flop whose own LUT4 loads the new compare result when its feature's lines (at most two)
    are high and keeps its value otherwise; no flip-flop clock enable. No F * W feature buffer,
    no enable LUT per feature. Only the strobes (``valid`` delayed, the first lines, the strobe
    copies, ``out_valid``) reset.
    """

    def __init__(self, features: int, feature_width: int, comparators, *, valid_copies: int = 0):
        super().__init__(features, feature_width, comparators, valid_copies=valid_copies)
        self.latency = stream_encoder_latency(self.feature_width)
        self.min_spacing = min_valid_spacing(self.feature_width)
        #: ``out_bits`` hold a sample for as many cycles as ``valid`` pulses are apart, less this
        self.hold_margin = 0
        self.lines = line_plan(self.features, self.slots)

    def rom_words(self) -> list[int]:
        W = self.feature_width
        return [sum(t << (s * W) for s, (t, _) in enumerate(slot)) for slot in self.slots]

    def _compare(self, m: Module, value, thr, s: int, copies: int) -> list:
        """The registered compare tree of slot ``s``, its result register and ``copies`` registers
        loaded from that (returned) of ``value >= thr``."""
        result = compare_tree(m, value, thr, f"cmp{s}")
        outs = []
        for r in range(copies):
            c = Signal(name=f"cmp{s}_{r}", reset_less=True, attrs={REPLICA_ATTR: 1})
            m.d.sync += c.eq(result)
            outs.append(c)
        return outs

    def _line_registers(self, m: Module, counter, step, before_step, restart_q) -> list:
        """Register the lines of :func:`line_plan`; returns per group {feature: its line copy}.

        ``before_step`` is the strobe one stage before ``step`` (None when the compare tree has a
        single level): then each copy of a first-group line is its own LUT of registers, the
        chunk's decoded value (registered a cycle earlier, like ``pre``: the counter is steady
        then), a private copy of the strobe and ``restart_q`` (``restart`` a cycle later), so
        that no LUT is shared between copies spread over the chip (a shared LUT adds a second
        route to a path). The same value as ``(chunk == key) & step``: ``step`` is ``before_step & ~restart``
        a cycle later, and two strobes are at least ``min_valid_spacing`` cycles apart."""
        plan = self.lines
        fields = [counter[lo:lo + w] for lo, w in plan["chunks"]]
        pre = {}
        for c, v in plan["pre"]:
            r = Signal(name=f"feat_pre{c}_{v}", reset_less=True)
            m.d.sync += r.eq(fields[c] == v)
            pre[c, v] = r
        out = []
        for gi, (group, lines) in enumerate(zip(plan["groups"], plan["lines"])):
            line_of = {}
            for key, copies in lines.items():
                tag = "_".join(str(v) for v in key)
                if gi == 0 and before_step is not None:
                    dec = Signal(name=f"feat_dec0_{tag}", reset_less=True)
                    m.d.sync += dec.eq(fields[0] == key[0])
                elif gi == 0:
                    expr = (fields[0] == key[0]) & step
                elif len(group) == 1:
                    expr = fields[group[0]] == key[0]
                else:
                    expr = pre[group[0], key[0]]
                    for c, v in zip(group[1:], key[1:]):
                        expr = expr & pre[c, v]
                for n, feats in enumerate(copies):
                    if gi == 0 and before_step is not None:
                        strobe = Signal(name=f"feat_strobe0_{tag}_{n}", attrs={REPLICA_ATTR: 1})
                        m.d.sync += strobe.eq(before_step)
                        expr = dec & strobe & ~restart_q
                    r = Signal(name=f"feat_line{gi}_{tag}_{n}", reset_less=gi > 0, attrs={REPLICA_ATTR: 1})
                    m.d.sync += r.eq(expr)
                    for f in feats:
                        line_of[f] = r
            out.append(line_of)
        return out

    def elaborate(self, platform):
        m = Module()
        F, W, S = self.features, self.feature_width, self.max_slots
        # cycles from ``valid`` until its compare result is in the registers before the copies
        k = self.compare_stages + FANOUT_STAGES - 1

        # the strobe, delayed alongside the compare tree; restart drops the features in flight
        strobe = [self.valid]
        for i in range(k):
            d = Signal(name=f"enc_strobe{i + 1}")
            m.d.sync += d.eq(strobe[-1] & ~self.restart)
            strobe.append(d)
        step = strobe[-1]  # this feature's compare is complete at the end of this cycle

        # Not reset (a reset net feeding the counter's enable logic was a critical path):
        # ``restart`` after reset puts it at feature 0, a cycle later, from a register of
        # ``restart`` next to the counter (``restart`` comes from the top, across the chip, and
        # the counter's enable is a LUT of it). No strobe reaches the counter in that cycle.
        restart_q = Signal(name="feat_restart_q", reset_less=True)
        m.d.sync += restart_q.eq(self.restart)
        counter = Signal(counter_bits(F), name="feat_counter", reset_less=True)
        last = Signal(name="feat_last", reset_less=True)
        m.d.sync += last.eq(counter == F - 1)
        m.d.comb += self.last.eq(last)
        with m.If(restart_q):
            m.d.sync += counter.eq(0)
        with m.Elif(step):
            with m.If(last):
                m.d.sync += counter.eq(0)
            with m.Else():
                m.d.sync += counter.eq(counter + 1)

        done = Signal(name="enc_done")
        m.d.sync += [done.eq(step & last & ~self.restart), self.out_valid.eq(done)]
        if self.valid_copies:
            copies = [Signal(name=f"out_valid_copy{i}", attrs={REPLICA_ATTR: 1}) for i in range(self.valid_copies)]
            m.d.sync += [c.eq(done) for c in copies]
            m.d.comb += self.out_valid_copies.eq(Cat(*copies))

        bits = [None] * len(self.comparators)
        for i, v in self.constants.items():
            bits[i] = C(v, 1)
        if S:
            # threshold ROM, read every cycle at the counter
            m.submodules.thresholds = rom = Memory(shape=S * W, depth=F, init=self.rom_words(),
                                                   attrs={"ram_style": "block", "rom_style": "block"})
            rd = rom.read_port(domain="sync")
            m.d.comb += rd.addr.eq(counter)
            # the block RAM's output is slow (clock-to-out and a long route): register it once more
            thr = Signal(S * W, name="thresholds_q", reset_less=True)
            m.d.sync += thr.eq(rd.data)

            # per slot, the compare tree (its result replicated per MAX_FANOUT users)
            users = [[] for _ in range(S)]
            for slot in self.slots:
                for s, (_, i) in enumerate(slot):
                    users[s].append(i)
            cmp_of = {}
            for s in range(S):
                copies = self._compare(m, self.value, thr[s * W:(s + 1) * W], s,
                                       -(-len(users[s]) // MAX_FANOUT))
                for n, i in enumerate(users[s]):
                    cmp_of[i] = copies[n // MAX_FANOUT]

            # decoded counter lines, registered as the compare leaves the tree
            line_of = self._line_registers(m, counter, step, strobe[-2] if k else None, restart_q)

            # write: each live bit's own LUT loads it when its feature's lines are high (no enable)
            for f, slot in enumerate(self.slots):
                if not slot:
                    continue
                enc = Signal(len(slot), name=f"enc_f{f}", reset_less=True)
                sel = None
                for lines in line_of:
                    sel = lines[f] if sel is None else sel & lines[f]
                # ``enc ^ (sel & (new ^ enc))`` rather than a multiplexer: yosys turns a multiplexer
                # that feeds its own register back into an enable, which costs a LUT per feature
                new = Cat(*(cmp_of[i] for _, i in slot))
                m.d.sync += enc.eq(enc ^ (Cat(*([sel] * len(slot))) & (new ^ enc)))
                for s, (_, i) in enumerate(slot):
                    bits[i] = enc[s]
        if bits:
            m.d.comb += self.out_bits.eq(Cat(*bits))
        return m
