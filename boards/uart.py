"""8N1 UART receiver and transmitter: one start bit, 8 data bits LSB first, one stop bit, no parity.

Both are Amaranth ``wiring.Component``s in the ``sync`` domain, parameterised by ``divisor``, the
number of clock cycles per bit (``round(clk_hz / baud)``; see :func:`divisor_for`).
"""

from __future__ import annotations

from amaranth.hdl import C, Cat, Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from logicforge.errors import LogicforgeError


def bit_timer(m: Module, divisor: int, name: str):
    """A free-running down counter for bit timing: (timer, tick, load(n)).

    ``tick`` is the counter's sign bit, a register output: it is high once the count passes below
    zero, so no wide ``== 0`` compare sits between registers. ``load(n)`` returns the statement that
    makes ``tick`` rise ``n`` cycles after the cycle that loads (n >= 1); without a load the counter
    keeps counting down (and ``tick`` stays high).
    """
    timer = Signal(signed(int(divisor).bit_length() + 1), name=name, reset_less=True)
    m.d.sync += timer.eq(timer - 1)

    def load(cycles: int):
        return timer.eq(int(cycles) - 2)

    return timer, timer[-1], load

#: The smallest supported divisor: the receiver samples each bit once, in its middle.
MIN_DIVISOR = 4
#: The largest baud-rate error accepted, as a fraction of the requested rate. A UART frame of
#: 10 bits tolerates a few percent in total between both ends.
MAX_BAUD_ERROR = 0.02


def divisor_for(clk_hz: float, baud: int) -> int:
    """Clock cycles per bit for ``baud`` at ``clk_hz``; LogicforgeError where the rate can't be met."""
    if baud <= 0:
        raise LogicforgeError(f"baud rate must be positive, got {baud}")
    div = int(round(clk_hz / baud))
    if div < MIN_DIVISOR:
        raise LogicforgeError(f"baud rate {baud} is too high for a {clk_hz / 1e6:g} MHz clock "
                              f"(needs at least {MIN_DIVISOR} clock cycles per bit)")
    err = abs(clk_hz / div - baud) / baud
    if err > MAX_BAUD_ERROR:
        raise LogicforgeError(f"baud rate {baud} is off by {err:.1%} at {clk_hz / 1e6:g} MHz "
                              f"(divisor {div}); choose another baud rate or clock")
    return div


class UARTReceiver(wiring.Component):
    """8N1 receiver.

    Ports:
      * ``rx`` (in, 1): the serial line, idle high, asynchronous to the clock (synchronised here by
        two flip-flops).
      * ``data`` (out, 8): the last byte received; valid while ``valid`` is high and held until the
        next byte completes.
      * ``valid`` (out, 1): high for exactly one cycle when a byte with a good stop bit completes.
      * ``error`` (out, 1): high for exactly one cycle when a frame ends with a low stop bit (the
        byte is dropped).
      * ``busy`` (out, 1): a frame is being received (from its start bit until ``valid`` or
        ``error``), a register.

    A falling edge starts a frame; the start bit is checked half a bit later (a shorter glitch is
    ignored), then every bit is sampled in its middle. The receiver is ready for the next start bit
    from the middle of the stop bit, so a sender that runs slightly fast is tolerated. Latency: the
    byte appears 9.5 bit times plus 5 cycles after the start bit's falling edge.

    Built for clocks of 100 MHz and more: every register's next state is one LUT4 of registers.
    The sample strobe ``step`` is itself a register, set the cycle after the bit timer's sign bit
    rises (the timer is reloaded by ``step``), and the frame's 10 samples shift in behind a marker
    bit whose arrival at bit 1 tells, one cycle ahead, that the frame is complete (``fin``).
    """

    def __init__(self, divisor: int):
        if divisor < MIN_DIVISOR:
            raise ValueError(f"divisor must be at least {MIN_DIVISOR}, got {divisor}")
        self.divisor = int(divisor)
        super().__init__({
            "rx": In(1, init=1),
            "data": Out(8),
            "valid": Out(1),
            "error": Out(1),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        div = self.divisor

        # Two-flop synchroniser; idles high so that reset does not look like a start bit.
        rx_meta = Signal(init=1, name="rx_meta")
        rx_sync = Signal(init=1, name="rx_sync")
        m.d.sync += [rx_meta.eq(self.rx), rx_sync.eq(rx_meta)]

        busy = Signal(name="rx_busy")   # inside a frame
        brk = Signal(name="rx_break")   # after a framing error, until the line is high again
        start = Signal(name="rx_start")  # registered: a start bit's falling edge, one cycle
        step = Signal(name="rx_step")   # registered: sample the line now (a bit's middle)
        glitch = Signal(name="rx_glitch")  # registered: the start bit was high again at its middle
        fin = Signal(name="rx_fin")     # registered: all 10 samples are in (the marker is at bit 0)
        # The 10 samples of a frame (start, 8 data, stop) shift in from the top behind a marker
        # one; bits below the marker are zero, so ``shreg[1]`` is the marker one step before the end.
        shreg = Signal(11, name="rx_shreg", reset_less=True)
        first = Signal(name="rx_first", reset_less=True)  # the next sample is the start bit's
        m.d.comb += self.busy.eq(busy)
        # The bit timer counts down; its sign bit is the tick, and ``step`` follows the tick by one
        # cycle, when the count is always -2. It holds one constant while idle (one reset/set net
        # for all its bits, so its carry chain stays whole) and is reloaded at ``step`` by adding
        # a constant chosen by ``step``/``step_n`` (registers), so no LUT sits before the chain.
        # The start bit's middle is half a bit after ``start``; with fewer than 6 cycles per bit
        # that is the very next cycle, earlier than the timer can tick, so ``start`` steps itself.
        half = div // 2 - 1  # cycles from ``start`` to the start bit's sample
        early = half <= 1
        width = int(div).bit_length() + 1
        timer = Signal(signed(width), name="rx_timer", reset_less=True)
        tick = timer[-1]
        step_n = Signal(name="rx_step_n", reset_less=True)  # ~step (only read while busy)
        idle_value = -2 if early else half - 3  # busy rises the cycle after ``start``
        reload = (div - 3) + 2  # at ``step`` the count is -2; the next step comes ``div`` cycles later
        addend = Cat(*(C(1, 1) if (reload >> i) & 1 else step_n for i in range(width)))
        with m.If(busy):
            m.d.sync += timer.eq(timer + addend)
        with m.Else():
            m.d.sync += timer.eq(idle_value)
        m.d.sync += [
            start.eq(~busy & ~brk & ~rx_sync & ~start),
            step.eq((start if early else 0) | (busy & tick & ~step)),
            step_n.eq(~((start if early else 0) | (busy & tick & ~step))),
            glitch.eq(step & first & rx_sync),
            fin.eq(step & shreg[1]),
            self.valid.eq(fin & shreg[10]),
            self.error.eq(fin & ~shreg[10]),
            busy.eq(start | (busy & ~fin & ~glitch)),
            brk.eq((fin & ~shreg[10]) | (brk & ~rx_sync)),
        ]
        with m.If(fin):
            m.d.sync += self.data.eq(shreg[2:10])
        with m.If(start):
            m.d.sync += [shreg.eq(1 << 10), first.eq(1)]
        with m.Elif(step):
            m.d.sync += [shreg.eq(Cat(shreg[1:], rx_sync)), first.eq(0)]
        return m


class UARTTransmitter(wiring.Component):
    """8N1 transmitter.

    Ports:
      * ``data`` (in, 8) and ``valid`` (in, 1): a byte to send; it is taken in a cycle where both
        ``valid`` and ``ready`` are high.
      * ``ready`` (out, 1): high while idle (combinational from the state register).
      * ``tx`` (out, 1): the serial line, idle high, driven straight from a flip-flop (glitch free).

    A byte taken in cycle t puts its start bit on ``tx`` from cycle t+1; the frame lasts
    10 * ``divisor`` cycles and ``ready`` rises again as the stop bit ends. Every register's next
    state (and enable) is one LUT4 of registers and ``valid``; the bit timer is held loaded while
    idle, so it needs no decision of its own.
    """

    def __init__(self, divisor: int):
        if divisor < 2:
            raise ValueError(f"divisor must be at least 2, got {divisor}")
        self.divisor = int(divisor)
        super().__init__({
            "data": In(8),
            "valid": In(1),
            "ready": Out(1),
            "tx": Out(1, init=1),
        })

    def elaborate(self, platform):
        m = Module()
        div = self.divisor

        # shreg[0] is the bit on the line; ones shift in from the top, so an idle line reads high.
        shreg = Signal(10, init=0x3FF, name="tx_shreg")
        busy = Signal(name="tx_busy")
        # one marker bit per bit still to send; the frame ends when the marker leaves bit 0
        left = Signal(10, name="tx_left", reset_less=True)
        timer, tick, load = bit_timer(m, div, "tx_timer")
        m.d.comb += [self.tx.eq(shreg[0]), self.ready.eq(~busy)]

        with m.If(~busy | tick):
            m.d.sync += load(div)
        with m.If(~busy):
            with m.If(self.valid):
                m.d.sync += [shreg.eq(Cat(0, self.data, 1)), left.eq(1 << 9), busy.eq(1)]
        with m.Elif(tick):
            m.d.sync += [shreg.eq(Cat(shreg[1:], 1)), left.eq(left >> 1)]
            with m.If(left[0]):
                m.d.sync += busy.eq(0)
        return m
