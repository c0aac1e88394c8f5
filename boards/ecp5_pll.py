"""ECP5 PLL (EHXPLLL) parameters for a wanted output frequency, with CLKOP fed back (FEEDBK_PATH "CLKOP").

Facts from the ECP5 sysCLOCK PLL design guide (Lattice TN1263) and the ECP5 data sheet:
  f_pfd = f_in / CLKI_DIV          must lie in [3.125, 400] MHz
  f_out = f_pfd * CLKFB_DIV        (CLKOP is the feedback, so the loop locks CLKOP to this)
  f_vco = f_out * CLKOP_DIV        must lie in [400, 800] MHz
  f_in in [8, 400] MHz, f_out in [10, 400] MHz; every divider in 1..128.
CLKOP_CPHASE = CLKOP_DIV - 1 and CLKOP_FPHASE = 0 give CLKOP no phase shift.
"""

from __future__ import annotations

from dataclasses import dataclass

from logicforge.errors import LogicforgeError

IN_MHZ = (8.0, 400.0)
PFD_MHZ = (3.125, 400.0)
VCO_MHZ = (400.0, 800.0)
OUT_MHZ = (10.0, 400.0)
DIV_RANGE = (1, 128)
#: Accept a PLL output within this fraction of the requested frequency.
MAX_ERROR = 0.01


@dataclass(frozen=True)
class ECP5PLLConfig:
    f_in_mhz: float
    f_out_mhz: float
    clki_div: int
    clkfb_div: int
    clkop_div: int

    @property
    def f_pfd_mhz(self) -> float:
        return self.f_in_mhz / self.clki_div

    @property
    def f_vco_mhz(self) -> float:
        return self.f_out_mhz * self.clkop_div

    @property
    def clkop_cphase(self) -> int:
        return self.clkop_div - 1

    def as_dict(self) -> dict:
        return {"primitive": "EHXPLLL", "clki_div": self.clki_div, "clkfb_div": self.clkfb_div,
                "clkop_div": self.clkop_div, "clkop_cphase": self.clkop_cphase,
                "pfd_mhz": self.f_pfd_mhz, "vco_mhz": self.f_vco_mhz}


def ecp5_pll_config(f_in_mhz: float, f_out_mhz: float) -> ECP5PLLConfig:
    """The parameters whose output is nearest ``f_out_mhz`` (ties: the highest VCO frequency, for
    the least jitter, then the highest PFD frequency); LogicforgeError if none is within 1 %."""
    if not IN_MHZ[0] <= f_in_mhz <= IN_MHZ[1]:
        raise LogicforgeError(f"a PLL input of {f_in_mhz:g} MHz is outside the ECP5 PLL's "
                              f"{IN_MHZ[0]:g}-{IN_MHZ[1]:g} MHz range")
    if not OUT_MHZ[0] <= f_out_mhz <= OUT_MHZ[1]:
        raise LogicforgeError(f"a PLL clock of {f_out_mhz:g} MHz is outside the ECP5 PLL's "
                              f"{OUT_MHZ[0]:g}-{OUT_MHZ[1]:g} MHz range")
    lo, hi = DIV_RANGE
    best = None
    for clki in range(lo, hi + 1):
        f_pfd = f_in_mhz / clki
        if not PFD_MHZ[0] <= f_pfd <= PFD_MHZ[1]:
            continue
        for clkfb in range(lo, hi + 1):
            f_out = f_pfd * clkfb
            if not OUT_MHZ[0] <= f_out <= OUT_MHZ[1]:
                continue
            for clkop in range(lo, hi + 1):
                f_vco = f_out * clkop
                if not VCO_MHZ[0] <= f_vco <= VCO_MHZ[1]:
                    continue
                key = (round(abs(f_out - f_out_mhz), 9), -f_vco, -f_pfd)
                if best is None or key < best[0]:
                    best = (key, ECP5PLLConfig(f_in_mhz, f_out, clki, clkfb, clkop))
    if best is None or best[0][0] > MAX_ERROR * f_out_mhz:
        got = f" (nearest {best[1].f_out_mhz:.3f} MHz)" if best else ""
        raise LogicforgeError(f"the ECP5 PLL cannot make {f_out_mhz:g} MHz from {f_in_mhz:g} MHz{got}")
    return best[1]


def ehxplll(config: ECP5PLLConfig, clk_in, clk_out, lock):
    """An Amaranth ``Instance`` of EHXPLLL for ``config``: ``clk_in`` -> ``clk_out`` (CLKOP, also
    the feedback), ``lock`` high once locked. Standby, dynamic phase and reset inputs are off."""
    from amaranth.hdl import Const, Instance

    return Instance(
        "EHXPLLL",
        a_FREQUENCY_PIN_CLKI=f"{config.f_in_mhz:g}",
        a_FREQUENCY_PIN_CLKOP=f"{config.f_out_mhz:g}",
        # the loop-filter settings Lattice's tools choose for this PLL
        a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1", a_MFG_GMCREF_SEL="2",
        p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
        p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_OUTDIVIDER_MUXB="DIVB",
        p_OUTDIVIDER_MUXC="DIVC", p_OUTDIVIDER_MUXD="DIVD",
        p_CLKI_DIV=config.clki_div, p_CLKFB_DIV=config.clkfb_div,
        p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=config.clkop_div,
        p_CLKOP_CPHASE=config.clkop_cphase, p_CLKOP_FPHASE=0,
        p_FEEDBK_PATH="CLKOP",
        i_CLKI=clk_in, i_CLKFB=clk_out, o_CLKOP=clk_out, o_LOCK=lock,
        i_RST=Const(0), i_STDBY=Const(0),
        i_PHASESEL0=Const(0), i_PHASESEL1=Const(0), i_PHASEDIR=Const(1), i_PHASESTEP=Const(1),
        i_PHASELOADREG=Const(1), i_PLLWAKESYNC=Const(0), i_ENCLKOP=Const(0),
    )
