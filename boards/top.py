"""The classifier top: feature bytes in over a UART, the class byte out over the UART and on LEDs.

:class:`ClassifierTop` is board independent: it has a ``sync`` domain and plain ``rx``/``tx``/LED
ports, so it simulates as is (``sim/uart_top_tb.py``). A board wrapper (``boards/icebreaker.py``)
supplies the clock, the reset and the pins. The protocol is documented in docs/boards.md.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from logicforge.boards.uart import UARTReceiver, UARTTransmitter, divisor_for
from logicforge.hdl.pipeline import REPLICA_ATTR
from logicforge.errors import LogicforgeError, check_choice

DEFAULT_BAUD = 115200
#: A sample whose bytes stop arriving for this long is dropped; the next byte starts a new sample.
DEFAULT_GAP_TIMEOUT_S = 0.1
#: Register stages between the core's result and the reply logic (the two sit far apart on the chip).
RESULT_STAGES = 2
#: The core's head in the board top: samples arrive over the UART far apart (``pipeline.HEADS``).
DEFAULT_TOP_HEAD = "serial"
#: Bit times from one byte's ``valid`` out of the UART receiver to the next one's, at the least
#: (a frame is 10 bit times; one less leaves room for a sender whose baud clock runs fast).
MIN_BYTE_BIT_TIMES = 9
#: Most classes whose index fits the one reply byte.
MAX_CLASSES = 256


#: The board top's threshold encoders: ``stream`` (``hdl/stream.py``: a compare per ROM slot, each
#: encoded bit written by its own four-input LUT) and ``shift`` (``hdl/shift_encoder.py``: one
#: compare per cycle into a shift chain; fewer cells and routes, docs/hardware.md).
ENCODERS = ("stream", "shift")
DEFAULT_TOP_ENCODER = "stream"


def check_encoder(encoder) -> str:
    """``encoder`` (None: ``DEFAULT_TOP_ENCODER``), or LogicforgeError naming the known ones."""
    return check_choice(encoder, ENCODERS, DEFAULT_TOP_ENCODER, "encoder")


def encoder_class(encoder):
    """The component class of the encoder named ``encoder`` (checked by :func:`check_encoder`)."""
    if check_encoder(encoder) == "shift":
        from logicforge.hdl.shift_encoder import ShiftEncoder

        return ShiftEncoder
    from logicforge.hdl.stream import StreamingEncoder

    return StreamingEncoder


def bytes_per_feature(feature_width: int) -> int:
    """Bytes sent per feature on the wire: ceil(W / 8), little-endian."""
    return -(-int(feature_width) // 8)


def sample_bytes(netlist) -> int:
    """Bytes the host sends per sample: features * ceil(W / 8)."""
    return netlist.features * bytes_per_feature(netlist.feature_width)


def encode_sample(netlist, features) -> bytes:
    """The bytes a host sends for one sample (a sequence of F integers): the wire protocol's definition."""
    nb = bytes_per_feature(netlist.feature_width)
    return b"".join(int(v).to_bytes(nb, "little") for v in features)


def check_netlist(netlist) -> None:
    """LogicforgeError where the UART protocol cannot carry this netlist's classes."""
    if netlist.classes > MAX_CLASSES:
        raise LogicforgeError(f"netlist has {netlist.classes} classes; the UART reply byte carries "
                              f"at most {MAX_CLASSES}")


class ClassifierTop(wiring.Component):
    """UART in -> :class:`LogicNetCore` -> UART out and LEDs, in the ``sync`` domain.

    Ports:
      * ``rx`` (in, 1): UART receive line (8N1 at ``baud``), idle high, asynchronous.
      * ``tx`` (out, 1): UART transmit line, idle high, driven from a flip-flop.
      * ``class_leds`` (out, ``led_bits``): the low bits of the last class, registered.
      * ``activity`` (out, 1): toggles with every classified sample, registered.
      * ``uart_error`` (out, 1): set by a UART framing error, cleared by the next classified sample.

    Protocol: the host sends a sample as ``features * ceil(W/8)`` bytes, feature 0 first, each
    feature little-endian in ceil(W/8) bytes (bits above W are ignored). When the last byte is in,
    the sample enters the core; ``latency`` cycles later (encoder + core) the class index goes out as one byte
    and onto the LEDs. A framing error, or a pause longer than ``gap_timeout_cycles`` inside a
    sample, drops the partial sample, so a host can always resynchronise by pausing. Replies are
    queued one deep; a reply (10 bit times) goes out before the next sample of two or more bytes
    is complete, so such samples may be streamed back to back. With one-byte samples a host whose
    baud clock runs faster than ours could overrun the queue: it should wait for the replies.

    Registers: no feature buffer. Each feature is encoded as it arrives (``encoder``, one of
    ``ENCODERS``, default ``DEFAULT_TOP_ENCODER``: :class:`~logicforge.hdl.stream.StreamingEncoder`,
    its live thresholds from a ROM indexed by the feature counter, only the live comparator bits
    written; or :class:`~logicforge.hdl.shift_encoder.ShiftEncoder`, the live thresholds compared
    one per cycle and shifted into a chain); those bits feed a
    ``LogicNetCore(pre_encoded=True, head=head)``; ``head`` defaults to ``DEFAULT_TOP_HEAD``
    (serial: the samples' last bytes are at least ``sample_bytes * MIN_BYTE_BIT_TIMES * divisor``
    cycles apart, which must cover ``pipeline.serial_interval(G, K)``, else LogicforgeError).
    Control is built for a fast clock: bit and gap timers are
    down counters whose sign bit is the tick, and every decision reads registered flags.
    """

    def __init__(self, netlist, *, clk_hz: float, baud: int = DEFAULT_BAUD, layers_per_stage=None,
                 gap_timeout_cycles: int | None = None, led_bits: int = 5, popcount_levels_per_stage=None,
                 head: str | None = None, encoder: str | None = None):
        from logicforge.hdl.core import LogicNetCore

        check_netlist(netlist)
        self.encoder_name = check_encoder(encoder)
        self.netlist = netlist
        self.clk_hz = float(clk_hz)
        self.baud = int(baud)
        self.divisor = divisor_for(self.clk_hz, self.baud)
        if gap_timeout_cycles is None:
            gap_timeout_cycles = int(DEFAULT_GAP_TIMEOUT_S * self.clk_hz)
        # A pause must be allowed to be at least a few byte times long.
        wanted = max(int(gap_timeout_cycles), 30 * self.divisor)
        # The gap timer is a prescaler of 2**p cycles and a counter of 2**h prescaler ticks (two
        # short carry chains instead of one long one); the pause that drops a partial sample lies
        # between 2**(p+h) and 2**(p+h) + 2**p cycles, at least the wanted one.
        self.gap_prescale_bits = max(1, wanted.bit_length() // 2)
        self.gap_count_bits = max(1, (-(-wanted // (1 << self.gap_prescale_bits)) - 1).bit_length())
        self.gap_timeout_cycles = (1 << (self.gap_prescale_bits + self.gap_count_bits)) + (1 << self.gap_prescale_bits)
        head = DEFAULT_TOP_HEAD if head is None else head
        self.core = LogicNetCore(netlist, layers_per_stage=layers_per_stage, pre_encoded=True,
                                 popcount_levels_per_stage=popcount_levels_per_stage,
                                 with_scores=False, hierarchy=True, head=head, in_valid_copies=True)
        spacing = sample_bytes(netlist) * MIN_BYTE_BIT_TIMES * self.divisor
        if spacing < self.core.sample_interval:
            raise LogicforgeError(
                f"the {self.core.head} head needs samples {self.core.sample_interval} cycles apart, but at "
                f"divisor {self.divisor} a sample of {sample_bytes(netlist)} bytes can arrive every "
                f"{spacing} cycles: use --head tree or a lower baud rate")
        feature_spacing = bytes_per_feature(netlist.feature_width) * MIN_BYTE_BIT_TIMES * self.divisor
        self.encoder = encoder_class(self.encoder_name)(netlist.features, netlist.feature_width,
                                                        self.core.comparators, valid_copies=self.core.valid_copies)
        if feature_spacing < self.encoder.min_spacing:
            raise LogicforgeError(
                f"the {self.encoder_name} encoder needs features {self.encoder.min_spacing} cycles apart, but at "
                f"divisor {self.divisor} they can arrive every {feature_spacing}: use a lower baud rate")
        # the encoder changes ``in_bits`` only when the next sample's features arrive, a byte or more later
        if feature_spacing - self.encoder.hold_margin < self.core.input_hold_cycles:
            raise LogicforgeError(
                f"the core reads its encoded bits for {self.core.input_hold_cycles} cycles, but at divisor "
                f"{self.divisor} the {self.encoder_name} encoder can change them after "
                f"{feature_spacing - self.encoder.hold_margin}: use a lower baud rate")
        #: cycles from the last byte's ``valid`` out of the UART receiver to the reply logic: the
        #: feature register, the encoder, the core and the result registers
        self.latency = 1 + self.encoder.latency + self.core.latency + RESULT_STAGES
        self.bytes_per_feature = bytes_per_feature(netlist.feature_width)
        self.sample_bytes = sample_bytes(netlist)
        super().__init__({
            "rx": In(1, init=1),
            "tx": Out(1, init=1),
            "class_leds": Out(led_bits),
            "activity": Out(1),
            "uart_error": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        net = self.netlist
        W, B = net.feature_width, self.bytes_per_feature

        m.submodules.uart_rx = rx = UARTReceiver(self.divisor)
        m.submodules.uart_tx = tx = UARTTransmitter(self.divisor)
        m.submodules.encoder = enc = self.encoder
        m.submodules.core = core = self.core
        m.d.comb += [rx.rx.eq(self.rx), self.tx.eq(tx.tx)]

        # -- byte assembly and the streaming encoder ---------------------------------------------
        # Every decision below reads registered flags (one LUT level to the next register); the
        # flags are computed one cycle ahead, which is free: bytes are hundreds of cycles apart.
        # Only ``boot`` is reset (to 1): the cycle after reset ``abort`` clears the byte state and
        # restarts the encoder, so no reset net sits in the enable logic of these registers.
        # A pause counts as one only while no frame is arriving (``rx.busy``), so a byte always
        # completes at least a byte time after ``abort``: the encoder's restart (``abort``
        # itself, a register) never meets a feature's ``valid``.
        byte_idx = Signal(range(B), name="byte_idx", reset_less=True)
        last_byte = Signal(name="last_byte", reset_less=True)  # byte_idx == B - 1
        more = Signal(name="more_bytes", reset_less=True)  # after the next byte, the sample is unfinished
        mid_sample = Signal(name="mid_sample", reset_less=True)  # a byte of an unfinished sample is in
        # registered: framing error, a pause mid-sample, or the first cycle after reset. Not reset
        # itself: yosys builds a register reset to 1 as an inverted flip-flop with a LUT behind,
        # and ``abort`` drives set/reset pins directly; ``boot`` (reset to 1) sets it once.
        abort = Signal(name="abort", reset_less=True)
        boot = Signal(init=1, name="boot")
        fire = Signal(name="feature_fire")  # registered: a whole feature is in value_r
        value_r = Signal(W, name="feature_value", reset_less=True)
        pre = Signal(self.gap_prescale_bits, name="gap_prescaler", reset_less=True)
        pre_msb = Signal(name="gap_prescaler_msb", reset_less=True)
        pre_tick = Signal(name="gap_prescaler_tick", reset_less=True)
        gap = Signal(self.gap_count_bits + 1, name="gap_timer", reset_less=True)
        gap_tick = gap[-1]  # 2**h prescaler ticks since the last byte
        m.d.sync += [pre.eq(pre + 1), pre_msb.eq(pre[-1]), pre_tick.eq(pre[-1] & ~pre_msb)]
        m.d.sync += [
            last_byte.eq(byte_idx == B - 1),
            more.eq(~(last_byte & enc.last)),
            abort.eq(boot | rx.error | (mid_sample & gap_tick & ~rx.busy)),
            boot.eq(0),
            fire.eq(rx.valid & last_byte),
        ]
        if B > 1:
            acc = Signal(8 * (B - 1), name="feature_acc", reset_less=True)  # earlier bytes of a feature
            value = Cat(acc, rx.data)[:W]
        else:
            value = rx.data[:W]
        m.d.comb += [enc.value.eq(value_r), enc.valid.eq(fire)]

        with m.If(rx.valid):
            m.d.sync += [gap.eq(0), value_r.eq(value), mid_sample.eq(more)]
            if B > 1:
                m.d.sync += acc.eq(Cat(acc[8:], rx.data))
            with m.If(last_byte):
                m.d.sync += byte_idx.eq(0)
            with m.Else():
                m.d.sync += byte_idx.eq(byte_idx + 1)
        with m.Elif(pre_tick & ~gap_tick):
            m.d.sync += gap.eq(gap + 1)
        with m.If(abort):
            m.d.sync += [byte_idx.eq(0), mid_sample.eq(0)]
        m.d.comb += enc.restart.eq(abort)

        m.d.comb += [core.in_valid.eq(enc.out_valid), core.in_bits.eq(enc.out_bits)]
        if self.core.valid_copies:  # the serial head's load, fanned out at flip-flops
            m.d.comb += core.in_valid_copies.eq(enc.out_valid_copies)

        # -- reply and LEDs --------------------------------------------------------------------
        pending = Signal(name="reply_pending")
        reply = Signal(8, name="reply_byte")
        m.d.comb += [tx.data.eq(reply), tx.valid.eq(pending)]
        with m.If(tx.ready & pending):
            m.d.sync += pending.eq(0)
        # the result crosses the chip from the core to the UART: RESULT_STAGES plain registers; the
        # last stage is doubled (kept apart in synthesis), one copy for the reply next to the UART,
        # one for the LEDs, whose pins lie elsewhere
        res_valid, res_class = core.out_valid, core.out_class
        for i in range(RESULT_STAGES - 1):
            v = Signal(name=f"result_valid{i}")
            c = Signal(len(core.out_class), name=f"result_class{i}", reset_less=True)
            m.d.sync += [v.eq(res_valid), c.eq(res_class)]
            res_valid, res_class = v, c
        last = RESULT_STAGES - 1
        copies = {}
        for use in ("reply", "led"):
            v = Signal(name=f"result_valid{last}_{use}", attrs={REPLICA_ATTR: 1})
            c = Signal(len(core.out_class), name=f"result_class{last}_{use}", reset_less=True,
                       attrs={REPLICA_ATTR: 1})
            m.d.sync += [v.eq(res_valid), c.eq(res_class)]
            copies[use] = (v, c)
        (reply_valid, reply_class), (led_valid, led_class) = copies["reply"], copies["led"]
        with m.If(reply_valid):
            m.d.sync += [pending.eq(1), reply.eq(reply_class)]
        with m.If(led_valid):
            m.d.sync += [self.class_leds.eq(led_class), self.activity.eq(~self.activity)]
        # set by a framing error, cleared by the next result: one LUT of registers, no enable (the
        # receiver and the result copy sit far apart, and an enable LUT adds a second route)
        m.d.sync += self.uart_error.eq((self.uart_error | rx.error) & ~led_valid)
        return m


#: Module name of the simulation top written by :func:`top_verilog`.
SIM_TOP = "uart_top"


def top_verilog(netlist, *, clk_hz: float, baud: int = DEFAULT_BAUD, layers_per_stage=None,
                gap_timeout_cycles: int | None = None, popcount_levels_per_stage=None,
                head: str | None = None, encoder: str | None = None) -> tuple[str, dict]:
    """Verilog of :class:`ClassifierTop` alone (module ``uart_top``: ports ``clk``, ``rst``, ``rx``,
    ``tx``, ``class_leds``, ``activity``, ``uart_error``; no FPGA primitives), for simulation.

    Returns (text, info) with ``divisor``, ``latency_cycles``, ``bytes_per_feature``,
    ``bytes_per_sample``, ``gap_timeout_cycles``, ``led_bits``, ``head``, ``encoder``.
    """
    from logicforge.hdl.verilog import to_verilog

    top = ClassifierTop(netlist, clk_hz=clk_hz, baud=baud, layers_per_stage=layers_per_stage,
                        gap_timeout_cycles=gap_timeout_cycles,
                        popcount_levels_per_stage=popcount_levels_per_stage, head=head, encoder=encoder)
    text = to_verilog(top, name=SIM_TOP)
    return text, {
        "module": SIM_TOP,
        "divisor": top.divisor,
        "latency_cycles": top.latency,
        "bytes_per_feature": top.bytes_per_feature,
        "bytes_per_sample": top.sample_bytes,
        "gap_timeout_cycles": top.gap_timeout_cycles,
        "led_bits": len(top.class_leds),
        "head": top.core.head,
        "encoder": top.encoder_name,
    }
