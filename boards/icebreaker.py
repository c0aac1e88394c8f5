"""iCEBreaker (iCE40UP5K-SG48): the classifier top on the board's pins, clock and reset.

Pins (amaranth-boards ``ICEBreakerPlatform``): the FTDI UART (``uart`` 0: rx pin 6, tx pin 9),
the red LED (``led`` 0) shows a UART framing error, the green LED (``led`` 1) toggles with every
classified sample, and the five LEDs of the break-off PMOD (``led`` 2..6) show bits 0..4 of the
class. The clock is the 12 MHz oscillator, or at any other ``clock_mhz`` the PLL (SB_PLL40_PAD)
fed by it, with the design held in (asynchronous, synchronously released) reset until the PLL locks.
"""

from __future__ import annotations

from pathlib import Path

from amaranth.hdl import ClockDomain, ClockSignal, Const, Elaboratable, Instance, Module, ResetSignal, Signal
from amaranth.lib import io

from logicforge.boards.registry import Board
from logicforge.boards.top import DEFAULT_BAUD
from logicforge.errors import LogicforgeError
from logicforge.fileio import write_json, write_text

OSC_MHZ = 12.0
PCF_FILE = "icebreaker.pcf"


class ICEBreakerTop(Elaboratable):
    """The board-level Elaboratable: clocking + :class:`~logicforge.boards.top.ClassifierTop` + pins.

    Built for ``amaranth_boards.icebreaker.ICEBreakerPlatform``; not simulatable on its own (it
    instantiates SB_IO and, with the PLL, SB_PLL40_PAD). Simulate ``ClassifierTop`` instead.
    """

    def __init__(self, netlist, *, clock_mhz: float = OSC_MHZ, baud: int = DEFAULT_BAUD,
                 layers_per_stage=None):
        from logicforge.boards.pll import pll_config
        from logicforge.boards.top import ClassifierTop

        if abs(clock_mhz - OSC_MHZ) < 1e-9:
            self.pll = None
        else:
            try:
                self.pll = pll_config(OSC_MHZ, clock_mhz)
            except LogicforgeError as e:
                raise LogicforgeError(f"--clock-mhz {clock_mhz:g}: {e} (12 uses the oscillator directly)") from None
        self.clock_mhz = self.pll.f_out_mhz if self.pll else OSC_MHZ
        self.classifier = ClassifierTop(netlist, clk_hz=self.clock_mhz * 1e6, baud=baud,
                                        layers_per_stage=layers_per_stage)

    def elaborate(self, platform):
        m = Module()
        if self.pll is not None:
            pll = self.pll
            clk_pin = platform.request("clk12", dir="-")
            clk = Signal(name="clk_pll")
            lock = Signal(name="pll_lock")
            m.submodules.pll = Instance(
                "SB_PLL40_PAD",
                p_FEEDBACK_PATH="SIMPLE",
                p_DIVR=pll.divr, p_DIVF=pll.divf, p_DIVQ=pll.divq, p_FILTER_RANGE=pll.filter_range,
                i_PACKAGEPIN=clk_pin.io,
                i_RESETB=Const(1), i_BYPASS=Const(0),
                o_PLLOUTGLOBAL=clk, o_LOCK=lock,
            )
            # Asynchronous reset, released synchronously: it goes to the flip-flops' reset pins,
            # not into their enable logic as a synchronous reset would. Two SB_DFFS, set while
            # the PLL is unlocked, release it; the second drives the reset net (a global buffer)
            # straight from its output. (Amaranth's ResetSynchronizer holds its stages at an
            # initial 1, which yosys builds on iCE40 as flip-flops between inverters: a LUT
            # between the register and the net.)
            m.domains.sync = ClockDomain("sync", async_reset=True)
            m.d.comb += ClockSignal("sync").eq(clk)
            unlocked = Signal(name="pll_unlocked")
            stage = Signal(name="reset_stage")
            rst = Signal(name="reset_sync")
            m.d.comb += unlocked.eq(~lock)
            m.submodules.reset_ff0 = Instance("SB_DFFS", i_C=clk, i_S=unlocked, i_D=Const(0), o_Q=stage)
            m.submodules.reset_ff1 = Instance("SB_DFFS", i_C=clk, i_S=unlocked, i_D=stage, o_Q=rst)
            m.d.comb += ResetSignal("sync").eq(rst)
            platform.add_clock_constraint(clk, self.clock_mhz * 1e6)
        # else: the platform's default sync domain, 12 MHz from pin 35 with a power-on reset.

        m.submodules.classifier = top = self.classifier
        uart = platform.request("uart", 0, dir={"rx": "-", "tx": "-"})
        m.submodules.uart_rx_buf = rx_buf = io.Buffer("i", uart.rx)
        m.submodules.uart_tx_buf = tx_buf = io.Buffer("o", uart.tx)
        m.d.comb += [top.rx.eq(rx_buf.i), tx_buf.o.eq(top.tx)]
        leds = [top.uart_error, top.activity, *top.class_leds]  # led 0 red, 1 green, 2..6 break-off
        for n, value in enumerate(leds):
            # registered in the IO cell: the LED registers of the top need not sit at the pins
            m.submodules[f"led{n}_buf"] = buf = io.FFBuffer("o", platform.request("led", n, dir="-"))
            m.d.comb += buf.o.eq(value)
        return m


class ICEBreaker(Board):
    name = "icebreaker"
    has_top = True
    device = "iCE40UP5K-SG48"
    nextpnr_args = ("--up5k", "--package", "sg48")
    lcs_available = 5280
    top_module = "top"
    top_file = "top.v"
    constraints_file = PCF_FILE

    def generate_top(self, netlist, *, layers_per_stage=None, clock_mhz=None, baud=None):
        """Elaborate the top for the platform; return ({file name: text}, info dict).

        Files: ``top.v`` (the whole design: top, UART, core, SB_* primitives) and ``icebreaker.pcf``.
        """
        from amaranth_boards.icebreaker import ICEBreakerPlatform

        clock_mhz = float(clock_mhz) if clock_mhz else OSC_MHZ
        baud = int(baud) if baud else DEFAULT_BAUD
        design = ICEBreakerTop(netlist, clock_mhz=clock_mhz, baud=baud, layers_per_stage=layers_per_stage)
        platform = ICEBreakerPlatform()
        platform.add_resources(platform.break_off_pmod)
        plan = platform.prepare(design, name=self.top_module, emit_src=False, debug_verilog=True)
        top = design.classifier
        files = {
            self.top_file: plan.files[f"{self.top_module}.debug.v"],
            PCF_FILE: plan.files[f"{self.top_module}.pcf"],
        }
        info = {
            "board": self.name,
            "top_module": self.top_module,
            "clock_mhz": design.clock_mhz,
            "clock_source": "pll" if design.pll else "oscillator",
            "pll": None if design.pll is None else {
                "divr": design.pll.divr, "divf": design.pll.divf, "divq": design.pll.divq,
                "filter_range": design.pll.filter_range, "vco_mhz": design.pll.f_vco_mhz},
            "baud": baud,
            "baud_divisor": top.divisor,
            "baud_actual": design.clock_mhz * 1e6 / top.divisor,
            "bytes_per_feature": top.bytes_per_feature,
            "bytes_per_sample": top.sample_bytes,
            "core_latency_cycles": top.latency,
            "layers_per_stage": top.core.layers_per_stage,
        }
        return files, info

    def write_top(self, netlist, outdir, core_info=None, *, clock_mhz=None, baud=None) -> list[Path]:
        lps = (core_info or {}).get("layers_per_stage")
        files, info = self.generate_top(netlist, layers_per_stage=lps, clock_mhz=clock_mhz, baud=baud)
        outdir = Path(outdir)
        written = []
        for fname, text in files.items():
            write_text(outdir / fname, text)
            written.append(outdir / fname)
        write_json(outdir / "top_info.json", info)
        written.append(outdir / "top_info.json")
        return written
