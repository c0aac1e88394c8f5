"""ULX3S with the LFE5U-85F (ECP5, CABGA381, speed grade 6): the classifier top on the board's
pins, clock and reset.

Pins (amaranth-boards ``ULX3S_85F_Platform``): the FTDI UART (``uart`` 0: rx M1, tx L4, the
board's USB port US1); ``led`` 0 (B2) shows a UART framing error, ``led`` 1 (C2) toggles with every
classified sample, ``led`` 2..7 (C1 D2 D1 E2 E1 H3) show bits 0..5 of the class. The clock is the
25 MHz oscillator (G2) with the platform's power-on reset (GSR), or at any other ``clock_mhz`` the
PLL (EHXPLLL, ``boards/ecp5_pll.py``) fed by it, with the design held in (asynchronous,
synchronously released) reset until the PLL locks. The top is the shared
:class:`~logicforge.boards.board_top.BoardTop`.
"""

from __future__ import annotations

from amaranth.lib import io

from logicforge.boards.board_top import BoardTop, PlatformBoard

OSC_MHZ = 25.0
LPF_FILE = "ulx3s.lpf"


class ULX3STop(BoardTop):
    """The ULX3S's :class:`BoardTop`: the 25 MHz oscillator on G2 and EHXPLLL."""

    osc_resource = "clk25"
    osc_mhz = OSC_MHZ
    class_led_bits = 6

    def pll_config(self, f_in_mhz, f_out_mhz):
        from logicforge.boards.ecp5_pll import ecp5_pll_config

        return ecp5_pll_config(f_in_mhz, f_out_mhz)

    def add_pll(self, m, platform, clk, lock):
        from logicforge.boards.ecp5_pll import ehxplll

        clk_pin = platform.request(self.osc_resource, dir="-")
        m.submodules.clk25_buf = buf = io.Buffer("i", clk_pin)
        m.submodules.pll = ehxplll(self.pll, buf.i, clk, lock)

    def pll_info(self):
        return self.pll.as_dict()


class ULX3S85F(PlatformBoard):
    name = "ulx3s-85f"
    family = "ecp5"
    device = "LFE5U-85F-6BG381C"
    #: nextpnr-ecp5's device, package and speed options for the platform's LFE5U-85F, BG381, speed 6,
    #: then the placer and router that routed a Fashion-MNIST network (`connections: grid`, 27,000
    #: LUT4 sites) in 10 minutes: the static (electrostatic) placer left 27 % less wire than HeAP,
    #: and router1 finished where router2's overuse stalled at ~10,000 wires (docs/hardware.md,
    #: "Grid connections on the 85F")
    nextpnr_args = ("--85k", "--package", "CABGA381", "--speed", "6", "--placer", "static", "--router", "router1")
    #: Above half the device, route congestion decides whether a design routes at all: the 88.09 %
    #: Fashion-MNIST network (63 %) stalled in router1 after timing-driven placement and routed after
    #: placement for wirelength alone; at 32 % both route, timing-driven with the higher Fmax (148 MHz
    #: against 103 MHz). docs/hardware.md, "Placement for wirelength".
    wirelength_fill = 0.5
    #: LUT4 sites (TRELLIS_COMB): 41,820 slices of two LUT4 and two flip-flops
    lcs_available = 83640
    top_module = "top"
    top_file = "top.v"
    constraints_file = LPF_FILE
    top_class = ULX3STop

    def platform(self):
        from amaranth_boards.ulx3s import ULX3S_85F_Platform

        return ULX3S_85F_Platform()
