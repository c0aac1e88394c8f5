"""``ShiftEncoder``: the threshold encoder as one compare and a shift chain.

The drop-in alternative to :class:`~logicforge.hdl.stream.StreamingEncoder` (the same ports and
contract) for designs whose routing, not their cell count, is the limit. Instead of a compare per
ROM slot and a four-input write LUT per encoded bit (value, compare result and two decoded counter
lines, routed from wherever they sit), each live threshold is compared in turn, one per cycle, and
its result shifted into a chain of flip-flops: an encoded bit costs one logic cell whose LUT reads
its neighbour in the chain, itself and a shift strobe. A UART byte lasts thousands of cycles at
100 MHz, so comparing a feature's thresholds one after another costs nothing.

Built for a 100 MHz iCE40 like the streaming encoder: between two registers at most one LUT4, a
block RAM read or a short counter's carry chain; the shift strobe is registered in copies, each
driving at most :data:`CHAIN_SEGMENT` flip-flops, and no flip-flop has a clock enable.
"""

from __future__ import annotations

from amaranth.hdl import C, Cat, Module, Mux, Signal
from amaranth.lib.memory import Memory

from logicforge.hdl.pipeline import REPLICA_ATTR
from logicforge.hdl.stream import ThresholdEncoder, compare_stages, compare_tree

#: Chain flip-flops per copy of the shift strobe. Measured on the 800 + 400 LUT4 Fashion-MNIST top
#: (docs/hardware.md): 32 per copy left one 8.5 ns route from a copy to a spread chain bit as the
#: critical path (95.6 MHz); 8 per copy removed it (100.1 MHz) for 104 logic cells more.
CHAIN_SEGMENT = 8
#: Copies of the shift strobe per copy one stage earlier (a two-level fan-out tree of flip-flops).
CHAIN_SEGMENT_GROUP = 8


def chain_order(slots) -> list[int]:
    """The output bits in chain order: feature by feature, each feature's slots in ROM order. After
    a whole sample, chain flip-flop j holds output bit ``chain_order(slots)[j]``."""
    return [i for slot in slots for _, i in slot]


def shift_pipeline_stages(feature_width: int) -> int:
    """Register levels from a threshold's issue to its result: the block RAM's read, its output
    register, and the compare tree."""
    return 2 + compare_stages(feature_width)


def shift_encoder_latency(feature_width: int, last_slots: int) -> int:
    """Cycles from the ``valid`` of a sample's last feature to ``out_valid``, where that feature has
    ``last_slots`` live thresholds: one cycle to load the issue counter, one issue per threshold,
    then the pipeline."""
    return 1 + int(last_slots) + shift_pipeline_stages(feature_width)


def shift_min_spacing(max_slots: int) -> int:
    """Cycles from a ``valid`` (or ``restart``) to the next ``valid``, at least: the feature's issues
    and the two cycles until the last one's compare leaves have read the held value (and at least
    three, for the per-feature count ROM to follow the feature counter)."""
    return max(int(max_slots), 1) + 2


class ShiftEncoder(ThresholdEncoder):
    """Encode features arriving one per ``valid`` into the comparator bits ``x[f] >= T``.

    Ports and contract as :class:`~logicforge.hdl.stream.StreamingEncoder` (domain ``sync``):
      * ``valid`` (in, 1) and ``value`` (in, W): the next feature of the current sample (feature 0
        first). Two ``valid`` pulses, and ``restart`` and the next ``valid``, are at least
        ``min_spacing = shift_min_spacing(max_slots)`` cycles apart. ``value`` is read only in
        the ``valid`` cycle.
      * ``restart`` (in, 1): forget the partial sample; the next ``valid`` is feature 0 again. It
        must be given once after reset and must not coincide with ``valid``. Thresholds in flight
        are dropped (no ``out_valid`` for a sample cut short).
      * ``last`` (out, 1): the next ``valid`` completes a sample (the counter is at F - 1).
      * ``out_bits`` (out, L = ``len(comparators)``): bit i is ``x[f] >= T`` for
        ``comparators[i] = (f, T)``, straight from the chain's flip-flops (a constant for T <= 0 and
        T >= 2**W). The chain shifts while a sample arrives: ``out_bits`` hold a whole sample from
        ``out_valid`` for ``s + 1 - k`` cycles, where ``s`` is the spacing of the last ``valid``
        and the next and ``k`` the last feature's live thresholds (``hold_margin`` = ``max_slots``
        bounds ``k``).
      * ``out_valid`` (out, 1): high for one cycle, ``latency`` (:func:`shift_encoder_latency`)
        cycles after the ``valid`` of a sample's last feature.
      * ``out_valid_copies`` (out, ``valid_copies``; only with ``valid_copies`` > 0): copies of
        ``out_valid`` from flip-flops of their own (``REPLICA_ATTR``).

    Structure: a ROM indexed by the feature counter holds each feature's number of live thresholds
    (negated); a second ROM holds every live threshold in chain order (:func:`chain_order`). On
    ``valid`` the count is loaded into an issue counter and ``value`` into a register; until the
    counter reaches 0, one threshold is read per cycle (the ROM pointer counts up), registered,
    compared with the value in the streaming encoder's registered compare tree
    (:func:`~logicforge.hdl.stream.compare_tree`), and its result shifted into the chain (one shift
    per live threshold per sample, so the chain always holds exactly one sample). Only the strobes
    and the issue counter reset.
    """

    def __init__(self, features: int, feature_width: int, comparators, *, valid_copies: int = 0):
        super().__init__(features, feature_width, comparators, valid_copies=valid_copies)
        self.order = chain_order(self.slots)
        self.chain_bits = len(self.order)
        self.latency = shift_encoder_latency(self.feature_width, len(self.slots[-1]) if self.slots else 0)
        self.min_spacing = shift_min_spacing(self.max_slots)
        #: ``out_bits`` hold a sample for as many cycles as ``valid`` pulses are apart, less this
        #: (the last feature's issues; see ``out_bits``)
        self.hold_margin = self.max_slots

    def elaborate(self, platform):
        m = Module()
        F, W, N = self.features, self.feature_width, self.chain_bits
        D = shift_pipeline_stages(W)

        restart_q = Signal(name="enc_restart_q", reset_less=True)
        m.d.sync += restart_q.eq(self.restart)
        counter = Signal(range(max(F, 2)), name="feat_counter", reset_less=True)
        last = Signal(name="feat_last", reset_less=True)
        first = Signal(name="feat_first", reset_less=True)
        m.d.sync += [last.eq(counter == F - 1), first.eq(counter == 0)]
        m.d.comb += self.last.eq(last)
        with m.If(restart_q):
            m.d.sync += counter.eq(0)
        with m.Elif(self.valid):
            with m.If(last):
                m.d.sync += counter.eq(0)
            with m.Else():
                m.d.sync += counter.eq(counter + 1)

        # the tail token: set by the last feature's ``valid``, sent down the pipeline after its issues
        tail = Signal(name="enc_tail")
        token = Signal(name="enc_token")
        bits = [None] * len(self.comparators)
        for i, v in self.constants.items():
            bits[i] = C(v, 1)
        busy = C(0, 1)  # an issue this cycle

        if N:
            # the issue counter holds -(thresholds left) in two's complement and counts up to 0: its
            # sign bit is "busy", straight from a flip-flop, and also the carry-in of the ROM pointer;
            # each counter bit is one LUT4 on a carry chain (no flip-flop enables: an iCE40 logic
            # block's eight cells share one, and enable nets made the placer's legalisation fail,
            # docs/hardware.md). A restart does not stop a feature's issues: the next sample
            # shifts all N bits anew.
            kw = max(1, self.max_slots.bit_length()) + 1
            mask = (1 << kw) - 1
            m.submodules.slot_counts = counts = Memory(
                shape=kw, depth=F, init=[-len(s) & mask for s in self.slots],
                attrs={"ram_style": "block", "rom_style": "block"})
            crd = counts.read_port(domain="sync")
            m.d.comb += crd.addr.eq(counter)
            count = Signal(kw, name="enc_count", reset_less=True)  # minus the current feature's slots
            m.d.sync += count.eq(crd.data)
            left = Signal(kw, name="enc_left")
            busy = left[-1]
            ptr = Signal(range(N + 1), name="enc_ptr", reset_less=True)
            m.d.sync += [
                left.eq(Mux(self.valid, count, left + busy)),
                ptr.eq(Mux(self.valid & first, 0, ptr + busy)),
            ]

            m.submodules.thresholds = rom = Memory(
                shape=W, depth=N, init=[t for slot in self.slots for t, _ in slot],
                attrs={"ram_style": "block", "rom_style": "block"})
            rd = rom.read_port(domain="sync")
            m.d.comb += rd.addr.eq(ptr)
            thr = Signal(W, name="enc_threshold", reset_less=True)
            m.d.sync += thr.eq(rd.data)

            # the compare tree (registered per level, as the streaming encoder's), then the result
            value = Signal(W, name="enc_value", reset_less=True)
            m.d.sync += value.eq(Mux(self.valid, self.value, value))
            result = compare_tree(m, value, thr, "cmp")

            # the issue strobe alongside, in plain registers (a restart needs not drop shifts in
            # flight: the next sample shifts all N bits anew); its last two stages are a fan-out tree
            # of copies, one per ``CHAIN_SEGMENT`` chain flip-flops, from flip-flops alone
            strobe = busy
            for s in range(D - 2):
                d = Signal(name=f"enc_shift{s + 1}")
                m.d.sync += d.eq(strobe)
                strobe = d
            segments = range(0, N, CHAIN_SEGMENT)
            groups = [Signal(name=f"enc_shift_group{g}", attrs={REPLICA_ATTR: 1})
                      for g in range(-(-len(segments) // CHAIN_SEGMENT_GROUP))]
            m.d.sync += [g.eq(strobe) for g in groups]
            chain = Signal(N, name="enc_chain", reset_less=True)
            for n, lo in enumerate(segments):
                hi = min(N, lo + CHAIN_SEGMENT)
                en = Signal(name=f"enc_shift_seg{n}", attrs={REPLICA_ATTR: 1})
                m.d.sync += en.eq(groups[n // CHAIN_SEGMENT_GROUP])
                seg = chain[lo:hi]
                nxt = Cat(chain[lo + 1:hi], result if hi == N else chain[hi])
                # ``q ^ (en & (next ^ q))`` rather than a multiplexer, which yosys turns into an enable
                m.d.sync += seg.eq(seg ^ (en.replicate(hi - lo) & (nxt ^ seg)))
            for j, i in enumerate(self.order):
                bits[i] = chain[j]

        m.d.comb += token.eq(tail & ~busy & ~self.valid)
        m.d.sync += tail.eq(Mux(self.valid, last, tail & ~token) & ~self.restart)
        # the token follows the last issue through the same D stages; the last is ``out_valid`` and
        # its copies
        t = token
        for s in range(D - 1):
            d = Signal(name=f"enc_token{s + 1}")
            m.d.sync += d.eq(t & ~self.restart)
            t = d
        m.d.sync += self.out_valid.eq(t & ~self.restart)
        if self.valid_copies:
            copies = [Signal(name=f"out_valid_copy{i}", attrs={REPLICA_ATTR: 1}) for i in range(self.valid_copies)]
            m.d.sync += [c.eq(t & ~self.restart) for c in copies]
            m.d.comb += self.out_valid_copies.eq(Cat(*copies))
        if bits:
            m.d.comb += self.out_bits.eq(Cat(*bits))
        return m
