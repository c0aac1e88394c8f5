"""iCE40 PLL (SB_PLL40_*) parameters for a wanted output frequency, in SIMPLE feedback mode.

Facts from the iCE40 sysCLOCK PLL design guide (Lattice TN1251):
  f_pfd = f_in / (DIVR + 1)          must lie in [10, 133] MHz
  f_vco = f_pfd * (DIVF + 1)         must lie in [533, 1066] MHz
  f_out = f_vco / 2**DIVQ            DIVQ in 1..6, f_out in [16, 275] MHz
  DIVR in 0..15, DIVF in 0..127; FILTER_RANGE is chosen from f_pfd.
"""

from __future__ import annotations

from dataclasses import dataclass

from logicforge.errors import LogicforgeError

PFD_MHZ = (10.0, 133.0)
VCO_MHZ = (533.0, 1066.0)
OUT_MHZ = (16.0, 275.0)
#: Accept a PLL output within this fraction of the requested frequency.
MAX_ERROR = 0.01


@dataclass(frozen=True)
class PLLConfig:
    f_in_mhz: float
    f_out_mhz: float
    divr: int
    divf: int
    divq: int
    filter_range: int

    @property
    def f_vco_mhz(self) -> float:
        return self.f_in_mhz / (self.divr + 1) * (self.divf + 1)


def _filter_range(f_pfd: float) -> int:
    for rng, hi in enumerate((17.0, 26.0, 44.0, 66.0, 101.0), start=1):
        if f_pfd < hi:
            return rng
    return 6


def pll_config(f_in_mhz: float, f_out_mhz: float) -> PLLConfig:
    """The parameters whose output is nearest ``f_out_mhz``; LogicforgeError if none is within 1 %."""
    if not OUT_MHZ[0] <= f_out_mhz <= OUT_MHZ[1]:
        raise LogicforgeError(f"a PLL clock of {f_out_mhz:g} MHz is outside the iCE40 PLL's "
                              f"{OUT_MHZ[0]:g}-{OUT_MHZ[1]:g} MHz range")
    best = None
    for divr in range(16):
        f_pfd = f_in_mhz / (divr + 1)
        if not PFD_MHZ[0] <= f_pfd <= PFD_MHZ[1]:
            continue
        for divf in range(128):
            f_vco = f_pfd * (divf + 1)
            if not VCO_MHZ[0] <= f_vco <= VCO_MHZ[1]:
                continue
            for divq in range(1, 7):
                f_out = f_vco / 2 ** divq
                err = abs(f_out - f_out_mhz)
                if best is None or err < best[0] - 1e-12:
                    best = (err, PLLConfig(f_in_mhz, f_out, divr, divf, divq, _filter_range(f_pfd)))
    if best is None or best[0] > MAX_ERROR * f_out_mhz:
        got = f" (nearest {best[1].f_out_mhz:.3f} MHz)" if best else ""
        raise LogicforgeError(f"the PLL cannot make {f_out_mhz:g} MHz from {f_in_mhz:g} MHz{got}")
    return best[1]
