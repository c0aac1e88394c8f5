"""iCEBreaker (iCE40UP5K-SG48): the classifier top on the board's pins, clock and reset.

Pins (amaranth-boards ``ICEBreakerPlatform``): the FTDI UART (``uart`` 0: rx pin 6, tx pin 9),
the red LED (``led`` 0) shows a UART framing error, the green LED (``led`` 1) toggles with every
classified sample, and the five LEDs of the break-off PMOD (``led`` 2..6) show bits 0..4 of the
class. The clock is the 12 MHz oscillator, or at any other ``clock_mhz`` the PLL (SB_PLL40_PAD)
fed by it, with the design held in (asynchronous, synchronously released) reset until the PLL locks.
The top itself is :class:`~logicforge.boards.board_top.BoardTop`, shared with the other boards.
"""

from __future__ import annotations

from amaranth.hdl import Const, Instance, ResetSignal, Signal

from logicforge.boards.board_top import BoardTop, PlatformBoard

OSC_MHZ = 12.0
PCF_FILE = "icebreaker.pcf"


class ICEBreakerTop(BoardTop):
    """The iCEBreaker's :class:`BoardTop`: the 12 MHz oscillator on pin 35 and SB_PLL40_PAD."""

    osc_resource = "clk12"
    osc_mhz = OSC_MHZ

    def pll_config(self, f_in_mhz, f_out_mhz):
        from logicforge.boards.pll import pll_config

        return pll_config(f_in_mhz, f_out_mhz)

    def add_pll(self, m, platform, clk, lock):
        pll = self.pll
        clk_pin = platform.request(self.osc_resource, dir="-")
        m.submodules.pll = Instance(
            "SB_PLL40_PAD",
            p_FEEDBACK_PATH="SIMPLE",
            p_DIVR=pll.divr, p_DIVF=pll.divf, p_DIVQ=pll.divq, p_FILTER_RANGE=pll.filter_range,
            i_PACKAGEPIN=clk_pin.io,
            i_RESETB=Const(1), i_BYPASS=Const(0),
            o_PLLOUTGLOBAL=clk, o_LOCK=lock,
        )

    def add_reset_release(self, m, clk, lock):
        # Two SB_DFFS, set while the PLL is unlocked, release the reset; the second drives the reset
        # net (a global buffer) straight from its output. (Amaranth's ResetSynchronizer holds its
        # stages at an initial 1, which yosys builds on iCE40 as flip-flops between inverters: a LUT
        # between the register and the net.)
        unlocked = Signal(name="pll_unlocked")
        stage = Signal(name="reset_stage")
        m.d.comb += unlocked.eq(~lock)
        m.submodules.reset_ff0 = Instance("SB_DFFS", i_C=clk, i_S=unlocked, i_D=Const(0), o_Q=stage)
        rst = Signal(name="reset_sync")
        m.submodules.reset_ff1 = Instance("SB_DFFS", i_C=clk, i_S=unlocked, i_D=stage, o_Q=rst)
        m.d.comb += ResetSignal("sync").eq(rst)

    def pll_info(self):
        pll = self.pll
        return {"divr": pll.divr, "divf": pll.divf, "divq": pll.divq,
                "filter_range": pll.filter_range, "vco_mhz": pll.f_vco_mhz}


class ICEBreaker(PlatformBoard):
    name = "icebreaker"
    family = "ice40"
    device = "iCE40UP5K-SG48"
    #: ``--tmg-ripup``: router1 rips up and reroutes the arcs on critical paths too, not only the
    #: congested ones. Measured on the 800 + 400 LUT4 Fashion-MNIST top (80 % full, a single route the
    #: critical path): 102.1 / 104.9 / 101.0 MHz at seeds default / 2 / 3 against 95.7 / 100.4 / 101.0
    #: without, for 1.1-3.6x the routing time (docs/hardware.md, "LUT4 nodes on the iCE40").
    nextpnr_args = ("--up5k", "--package", "sg48", "--tmg-ripup")
    lcs_available = 5280
    top_module = "top"
    top_file = "top.v"
    constraints_file = PCF_FILE
    top_class = ICEBreakerTop

    def platform(self):
        from amaranth_boards.icebreaker import ICEBreakerPlatform

        platform = ICEBreakerPlatform()
        platform.add_resources(platform.break_off_pmod)
        return platform
