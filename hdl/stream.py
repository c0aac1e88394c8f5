"""``StreamingEncoder``: the threshold encoder for features that arrive one at a time.

A board top receives a sample serially (UART bytes), so it encodes each feature as it arrives
instead of buffering all F * W bits: the feature is compared against only *its* live thresholds,
read from a small ROM indexed by the feature counter, and only the live encoded bits are written,
straight into the register that feeds a ``LogicNetCore(pre_encoded=True)``.
"""

from __future__ import annotations

from amaranth.hdl import C, Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

#: Cycles from the ``valid`` of a sample's last feature to ``out_valid``: compare, then write.
STREAM_ENCODER_LATENCY = 2
#: Cycles from a ``valid`` (or ``restart``) to the next ``valid``, at least.
MIN_VALID_SPACING = 3
#: A registered compare bit drives at most this many encoded-bit flip-flops (it is replicated).
MAX_FANOUT = 32
#: Width of the first feature-counter chunk, whose decoder also carries the strobe; the others
#: are 4 bits, so the write enable of a feature is one LUT4 of at most 4 decoded lines.
FIRST_CHUNK_BITS = 3
CHUNK_BITS = 4


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


class StreamingEncoder(wiring.Component):
    """Encode features arriving one per ``valid`` into the comparator bits ``x[f] >= T``.

    Ports (domain ``sync``):
      * ``valid`` (in, 1) and ``value`` (in, W): the next feature of the current sample (feature 0
        first). Two ``valid`` pulses must be at least ``MIN_VALID_SPACING`` cycles apart, and the
        first one as long after ``restart`` (the threshold ROM's word is registered twice after
        the feature counter moves; a UART byte takes hundreds of cycles).
      * ``restart`` (in, 1): forget the partial sample; the next ``valid`` is feature 0 again.
        It must not coincide with ``valid``, and must be given once after reset (the feature
        counter itself is not reset, to keep the reset net out of its logic).
      * ``last`` (out, 1): the next ``valid`` completes a sample (the counter is at F - 1).
      * ``out_bits`` (out, L = ``len(comparators)``): bit i is ``x[f] >= T`` for
        ``comparators[i] = (f, T)``, straight from flip-flops (or a constant for T <= 0 and
        T >= 2**W); a bit changes only when its feature arrives.
      * ``out_valid`` (out, 1): high for one cycle, ``STREAM_ENCODER_LATENCY`` cycles after the
        ``valid`` of a sample's last feature; ``out_bits`` then hold that whole sample.

    Structure: the feature counter addresses a ROM whose word f holds feature f's live thresholds
    (slot s: bits ``[s*W, (s+1)*W)``, at most ``max_slots`` slots), read and registered every
    cycle. Stage 1 registers one W-bit
    compare per slot (replicated so that no copy drives more than ``MAX_FANOUT`` bits) and the
    decoded chunks of the counter (the first with the strobe). Stage 2 writes the bits of feature
    f with an enable that is one LUT4 of its decoded lines. No F * W feature buffer exists.
    Only the strobes (``valid`` delayed, ``out_valid``) are reset.
    """

    def __init__(self, features: int, feature_width: int, comparators):
        self.features = int(features)
        self.feature_width = int(feature_width)
        self.comparators = [(int(f), int(t)) for f, t in comparators]
        self.slots, self.constants = slot_table(self.features, self.feature_width, self.comparators)
        self.max_slots = max((len(s) for s in self.slots), default=0)
        self.live_features = sum(1 for s in self.slots if s)
        self.latency = STREAM_ENCODER_LATENCY
        super().__init__({
            "valid": In(1),
            "value": In(self.feature_width),
            "restart": In(1),
            "last": Out(1),
            "out_bits": Out(len(self.comparators)),
            "out_valid": Out(1),
        })

    def rom_words(self) -> list[int]:
        W = self.feature_width
        return [sum(t << (s * W) for s, (t, _) in enumerate(slot)) for slot in self.slots]

    def elaborate(self, platform):
        m = Module()
        F, W, S = self.features, self.feature_width, self.max_slots

        # Not reset (a reset net feeding the counter's enable logic was a critical path):
        # ``restart`` after reset puts it at feature 0.
        counter = Signal(range(max(F, 2)), name="feat_counter", reset_less=True)
        last = Signal(name="feat_last", reset_less=True)
        m.d.sync += last.eq(counter == F - 1)
        m.d.comb += self.last.eq(last)
        with m.If(self.restart):
            m.d.sync += counter.eq(0)
        with m.Elif(self.valid):
            with m.If(last):
                m.d.sync += counter.eq(0)
            with m.Else():
                m.d.sync += counter.eq(counter + 1)

        done = Signal(name="enc_done")
        m.d.sync += [done.eq(self.valid & last), self.out_valid.eq(done)]

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

            # stage 1: per slot, the compare (replicated per MAX_FANOUT users); decoded counter chunks
            users = [[] for _ in range(S)]
            for slot in self.slots:
                for s, (_, i) in enumerate(slot):
                    users[s].append(i)
            cmp_of = {}
            for s in range(S):
                ge = self.value >= thr[s * W:(s + 1) * W]
                for r in range(0, len(users[s]), MAX_FANOUT):
                    c = Signal(name=f"cmp{s}_{r // MAX_FANOUT}", reset_less=True)
                    m.d.sync += c.eq(ge)
                    for i in users[s][r:r + MAX_FANOUT]:
                        cmp_of[i] = c
            lines = []
            cbits = len(counter)
            for k, (lo, w) in enumerate(_chunks(cbits)):
                field = counter[lo:lo + w]
                dec = Signal(1 << w, name=f"feat_dec{k}", init=0, reset_less=k > 0)
                m.d.sync += dec.eq(Cat(*(((field == v) & self.valid) if k == 0 else (field == v)
                                         for v in range(1 << w))))
                lines.append((lo, w, dec))

            # stage 2: write the live bits of the feature whose lines are all high
            for f, slot in enumerate(self.slots):
                if not slot:
                    continue
                we = None
                for lo, w, dec in lines:
                    line = dec[(f >> lo) & ((1 << w) - 1)]
                    we = line if we is None else we & line
                enc = Signal(len(slot), name=f"enc_f{f}", reset_less=True)
                with m.If(we):
                    m.d.sync += enc.eq(Cat(*(cmp_of[i] for _, i in slot)))
                for s, (_, i) in enumerate(slot):
                    bits[i] = enc[s]
        if bits:
            m.d.comb += self.out_bits.eq(Cat(*bits))
        return m
