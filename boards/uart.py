"""8N1 UART receiver and transmitter: one start bit, 8 data bits LSB first, one stop bit, no parity.

Both are Amaranth ``wiring.Component``s in the ``sync`` domain, parameterised by ``divisor``, the
number of clock cycles per bit (``round(clk_hz / baud)``; see :func:`divisor_for`).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, signed
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

    A falling edge starts a frame; the start bit is checked half a bit later (a shorter glitch is
    ignored), then every bit is sampled in its middle. The receiver is ready for the next start bit
    from the middle of the stop bit, so a sender that runs slightly fast is tolerated. Latency: the
    byte appears 9.5 bit times plus 5 cycles after the start bit's falling edge. Every
    decision is one LUT of registered flags (the start pulse, the timer's sign bit, the frame's
    marker bit), so the receiver is built for clocks of 100 MHz and more.
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
        })

    def elaborate(self, platform):
        m = Module()
        div = self.divisor

        # Two-flop synchroniser; idles high so that reset does not look like a start bit.
        rx_meta = Signal(init=1, name="rx_meta")
        rx_sync = Signal(init=1, name="rx_sync")
        m.d.sync += [rx_meta.eq(self.rx), rx_sync.eq(rx_meta)]

        timer, tick, load = bit_timer(m, div, "rx_timer")
        busy = Signal(name="rx_busy")   # inside a frame
        brk = Signal(name="rx_break")   # after a framing error, until the line is high again
        start = Signal(name="rx_start")  # registered: a start bit's falling edge, one cycle
        glitch = Signal(name="rx_glitch")  # registered: the start bit was high again at its middle
        # The 10 samples of a frame (start, 8 data, stop) shift in from the top behind a marker
        # one: the marker reaches bit 0 exactly when all 10 are in, so "done" is a register bit.
        shreg = Signal(11, name="rx_shreg", reset_less=True)
        first = Signal(name="rx_first", reset_less=True)  # the next sample is the start bit's
        done = busy & shreg[0]
        m.d.sync += [
            self.valid.eq(done & shreg[10]),
            self.error.eq(done & ~shreg[10]),
            start.eq(~busy & ~brk & ~rx_sync & ~start),
            glitch.eq(busy & tick & first & rx_sync),
        ]
        with m.If(done):
            m.d.sync += self.data.eq(shreg[2:10])

        with m.If(start):
            m.d.sync += [busy.eq(1), load(div // 2 - 1), shreg.eq(1 << 10), first.eq(1)]
        with m.Elif(done | glitch):
            m.d.sync += busy.eq(0)
        with m.Elif(busy & tick):
            m.d.sync += [shreg.eq(Cat(shreg[1:], rx_sync)), load(div), first.eq(0)]
        with m.If(done & ~shreg[10]):
            m.d.sync += brk.eq(1)
        with m.Elif(rx_sync):
            m.d.sync += brk.eq(0)
        return m


class UARTTransmitter(wiring.Component):
    """8N1 transmitter.

    Ports:
      * ``data`` (in, 8) and ``valid`` (in, 1): a byte to send; it is taken in a cycle where both
        ``valid`` and ``ready`` are high.
      * ``ready`` (out, 1): high while idle (combinational from the state register).
      * ``tx`` (out, 1): the serial line, idle high, driven straight from a flip-flop (glitch free).

    A byte taken in cycle t puts its start bit on ``tx`` from cycle t+1; the frame lasts
    10 * ``divisor`` cycles and ``ready`` rises again as the stop bit ends.
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

        with m.If(~busy):
            with m.If(self.valid):
                m.d.sync += [shreg.eq(Cat(0, self.data, 1)), left.eq(1 << 9), busy.eq(1), load(div)]
        with m.Elif(tick):
            m.d.sync += [shreg.eq(Cat(shreg[1:], 1)), left.eq(left >> 1), load(div)]
            with m.If(left[0]):
                m.d.sync += busy.eq(0)
        return m
