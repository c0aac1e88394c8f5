"""What every FPGA board with a UART shares: the board-level top around :class:`ClassifierTop`
(clocking, reset, UART and LED pins) and the board class that elaborates it for its
amaranth-boards platform.

A board module (``icebreaker.py``, ``ulx3s.py``) subclasses :class:`BoardTop` with its oscillator
and PLL primitive and :class:`PlatformBoard` with its platform, device and nextpnr arguments.
The classifier, its core and the UART are the same on every board, so the core's parity tests
cover every board's datapath.
"""

from __future__ import annotations

from pathlib import Path

from amaranth.hdl import ClockDomain, ClockSignal, Elaboratable, Module, Signal
from amaranth.lib import io
from amaranth.lib.cdc import ResetSynchronizer

from logicforge.boards.registry import Board
from logicforge.boards.top import DEFAULT_BAUD
from logicforge.errors import LogicforgeError
from logicforge.fileio import write_json, write_text


class BoardTop(Elaboratable):
    """Clocking + :class:`~logicforge.boards.top.ClassifierTop` + pins, for an amaranth-boards platform.

    Pins: ``uart`` 0 (rx, tx); ``led`` 0 shows a UART framing error, ``led`` 1 toggles with every
    classified sample, ``led`` 2.. show the low bits of the class. The clock is the board's
    oscillator (the platform's default ``sync`` domain and power-on reset), or at any other
    ``clock_mhz`` the board's PLL fed by it, with the design held in (asynchronous, synchronously
    released) reset until the PLL locks. Not simulatable on its own (FPGA primitives); simulate
    ``ClassifierTop`` instead.

    Subclasses set :attr:`osc_resource` and :attr:`osc_mhz` and implement :meth:`pll_config` and
    :meth:`add_pll`.
    """

    #: the oscillator's platform resource and frequency
    osc_resource: str = ""
    osc_mhz: float = 0.0
    #: how many class bits go to LEDs (``led`` 2 .. 2 + class_led_bits - 1)
    class_led_bits: int = 5

    def __init__(self, netlist, *, clock_mhz: float | None = None, baud: int = DEFAULT_BAUD,
                 layers_per_stage=None, popcount_levels_per_stage=None, head=None, encoder=None):
        from logicforge.boards.top import ClassifierTop

        clock_mhz = self.osc_mhz if clock_mhz is None else float(clock_mhz)
        if abs(clock_mhz - self.osc_mhz) < 1e-9:
            self.pll = None
        else:
            try:
                self.pll = self.pll_config(self.osc_mhz, clock_mhz)
            except LogicforgeError as e:
                raise LogicforgeError(f"--clock-mhz {clock_mhz:g}: {e} ({self.osc_mhz:g} uses the "
                                      f"oscillator directly)") from None
        self.clock_mhz = self.pll.f_out_mhz if self.pll else self.osc_mhz
        self.classifier = ClassifierTop(netlist, clk_hz=self.clock_mhz * 1e6, baud=baud,
                                        layers_per_stage=layers_per_stage, led_bits=self.class_led_bits,
                                        popcount_levels_per_stage=popcount_levels_per_stage, head=head,
                                        encoder=encoder)

    def pll_config(self, f_in_mhz: float, f_out_mhz: float):
        """The PLL's parameters (an object with ``f_out_mhz``); LogicforgeError if unreachable."""
        raise NotImplementedError

    def add_pll(self, m: Module, platform, clk: Signal, lock: Signal) -> None:
        """Add the PLL, fed by the oscillator pin, driving ``clk`` and ``lock``, to ``m``."""
        raise NotImplementedError

    def add_reset_release(self, m: Module, clk: Signal, lock: Signal) -> None:
        """Drive the sync domain's (asynchronous) reset high while ``lock`` is low and release it
        synchronously to ``clk``. Default: Amaranth's ``ResetSynchronizer``; a board may build it
        from its family's set flip-flops instead."""
        m.submodules.reset_sync = ResetSynchronizer(~lock, domain="sync")

    def pll_info(self) -> dict:
        """The PLL's parameters for ``top_info.json``."""
        raise NotImplementedError

    def elaborate(self, platform):
        m = Module()
        if self.pll is not None:
            clk = Signal(name="clk_pll")
            lock = Signal(name="pll_lock")
            self.add_pll(m, platform, clk, lock)
            # Asynchronous reset (released synchronously by the ResetSynchronizer): it goes to the
            # flip-flops' reset pins, not into their enable logic as a synchronous reset would,
            # so the reset net is never part of a clocked path.
            m.domains.sync = ClockDomain("sync", async_reset=True)
            m.d.comb += ClockSignal("sync").eq(clk)
            self.add_reset_release(m, clk, lock)
            platform.add_clock_constraint(clk, self.clock_mhz * 1e6)
        # else: the platform's default sync domain, from the oscillator with a power-on reset.

        m.submodules.classifier = top = self.classifier
        # raw ports for every subsignal (the ULX3S's UART also has rts and dtr, left unused)
        uart = platform.request("uart", 0, dir={s.name: "-" for s in platform.lookup("uart", 0).ios})
        m.submodules.uart_rx_buf = rx_buf = io.Buffer("i", uart.rx)
        m.submodules.uart_tx_buf = tx_buf = io.Buffer("o", uart.tx)
        m.d.comb += [top.rx.eq(rx_buf.i), tx_buf.o.eq(top.tx)]
        leds = [top.uart_error, top.activity, *top.class_leds]
        for n, value in enumerate(leds):
            # registered in the IO cell: the LED registers of the top need not sit at the pins
            m.submodules[f"led{n}_buf"] = buf = io.FFBuffer("o", platform.request("led", n, dir="-"))
            m.d.comb += buf.o.eq(value)
        return m


class PlatformBoard(Board):
    """A board with a top level: elaborates its :class:`BoardTop` for its amaranth-boards platform.

    Subclasses set ``top_class`` and the :class:`~logicforge.boards.registry.Board` attributes,
    and implement :meth:`platform`.
    """

    has_top = True
    top_class: type[BoardTop] = BoardTop

    def platform(self):
        """A fresh amaranth-boards platform instance with every resource the top requests."""
        raise NotImplementedError

    @property
    def osc_mhz(self) -> float:
        return self.top_class.osc_mhz

    def generate_top(self, netlist, *, layers_per_stage=None, clock_mhz=None, baud=None,
                     popcount_levels_per_stage=None, head=None, encoder=None):
        """Elaborate the top for the platform; return ({file name: text}, info dict).

        Files: ``top.v`` (the whole design: top, UART, core, the family's IO and PLL primitives)
        and the constraints file (``constraints_file``).
        """
        baud = int(baud) if baud else DEFAULT_BAUD
        design = self.top_class(netlist, clock_mhz=clock_mhz, baud=baud, layers_per_stage=layers_per_stage,
                                popcount_levels_per_stage=popcount_levels_per_stage, head=head,
                                encoder=encoder)
        plan = self.platform().prepare(design, name=self.top_module, emit_src=False, debug_verilog=True)
        ext = Path(self.constraints_file).suffix
        top = design.classifier
        files = {
            self.top_file: plan.files[f"{self.top_module}.debug.v"],
            self.constraints_file: plan.files[f"{self.top_module}{ext}"],
        }
        info = {
            "board": self.name,
            "device": self.device,
            "top_module": self.top_module,
            "clock_mhz": design.clock_mhz,
            "clock_source": "pll" if design.pll else "oscillator",
            "pll": None if design.pll is None else design.pll_info(),
            "baud": baud,
            "baud_divisor": top.divisor,
            "baud_actual": design.clock_mhz * 1e6 / top.divisor,
            "bytes_per_feature": top.bytes_per_feature,
            "bytes_per_sample": top.sample_bytes,
            "core_latency_cycles": top.latency,
            "layers_per_stage": top.core.layers_per_stage,
            "popcount_levels_per_stage": top.core.popcount_levels_per_stage,
            "head": top.core.head,
            "encoder": top.encoder_name,
        }
        return files, info

    def write_top(self, netlist, outdir, core_info=None, *, clock_mhz=None, baud=None, head=None,
                  encoder=None) -> list[Path]:
        lps = (core_info or {}).get("layers_per_stage")
        plps = (core_info or {}).get("popcount_levels_per_stage")
        files, info = self.generate_top(netlist, layers_per_stage=lps, clock_mhz=clock_mhz, baud=baud,
                                        popcount_levels_per_stage=plps, head=head, encoder=encoder)
        outdir = Path(outdir)
        written = []
        for fname, text in files.items():
            write_text(outdir / fname, text)
            written.append(outdir / fname)
        write_json(outdir / "top_info.json", info)
        written.append(outdir / "top_info.json")
        return written
