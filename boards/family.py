"""What the synthesis flow needs to know about an FPGA family: its yosys command, its nextpnr and
packer, and the names of its cells in the tools' reports.

``boards/flow.py`` runs the same steps for every board (yosys -> nextpnr --report -> packer) and
asks the board's :class:`Family` for the family-specific parts. Two families are known:

* :data:`ICE40` (iCEBreaker): ``synth_ice40``, ``nextpnr-ice40 --pcf ... --asc``, ``icepack``.
  A logic cell (``ICESTORM_LC``) is one LUT4 with its carry and flip-flop.
* :data:`ECP5` (ULX3S): ``synth_ecp5``, ``nextpnr-ecp5 --lpf ... --textcfg``, ``ecppack``.
  A slice holds two LUT4 (``TRELLIS_COMB``) and two flip-flops (``TRELLIS_FF``); one LUT4 with its
  flip-flop is what this project calls a logic cell there, so the device's logic cells are its
  LUT4 sites (LFE5U-85F: 83,640) and ``lcs`` is the larger of the LUT4 sites and flip-flops used.
  A ``CCU2C`` (two-bit carry cell) takes two LUT4 sites.

Nothing heavy is imported here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    name: str
    #: the yosys synthesis command (without ``-top``)
    synth_command: str
    #: the nextpnr tool (a key of ``flow.TOOLS``) and the option that reads the board's constraints
    nextpnr: str
    constraints_option: str
    #: nextpnr's option for the placed-and-routed output, and the file it is written to (under synth/)
    placed_option: str
    placed_file: str
    #: the packer (a key of ``flow.TOOLS``) and the bitstream file it writes (beside synth.json)
    packer: str
    bitstream_file: str
    #: yosys cell types: LUT4s, carry cells, block RAMs, DSPs; flip-flops are the types with
    #: one of ``ff_prefixes``
    lut_cells: tuple[str, ...]
    carry_cells: tuple[str, ...]
    ff_prefixes: tuple[str, ...]
    bram_prefixes: tuple[str, ...]
    dsp_cells: tuple[str, ...]
    #: nextpnr report: the BEL type(s) whose use is the logic-cell count (the largest is taken)
    lc_bels: tuple[str, ...]
    #: logic-cell (LUT4) sites one yosys carry cell takes besides the LUT4s (iCE40: 0, the carry
    #: sits beside a LUT4; ECP5: 2, a CCU2C is two LUT4s with their carry)
    carry_sites: int = 0
    #: the label of ``synth_command``'s last stage, run here without its ``autoname`` pass (None:
    #: run the whole command). synth_ecp5's ``check`` stage starts with ``autoname``, which only
    #: renames nets but rescans the whole netlist once per step of name propagation: on a flattened
    #: design of 88,000 LUT4 it took 983 s of yosys's 2282 s (yosys 0.70, YoWASP; docs/hardware.md).
    skip_autoname_in: str | None = None

    def pack_args(self, placed: str, out: str) -> list[str]:
        """The packer's arguments: placed design ``placed`` -> bitstream ``out`` (paths relative
        to the build directory)."""
        if self.packer == "icepack":
            return [placed, out]
        # ecppack: compressed (what the ULX3S and openFPGALoader expect; smaller and loads faster)
        return ["--compress", "--input", placed, "--bit", out]

    def synth_script(self, top: str | None, extra: str = "") -> list[str]:
        """The yosys commands that synthesise module ``top`` (None: the command's own choice)."""
        command = " ".join(part for part in (self.synth_command, extra, f"-top {top}" if top else "") if part)
        if self.skip_autoname_in is None:
            return [command]
        # everything up to the check stage, then the check stage's own commands less autoname
        return [f"{command} -run :{self.skip_autoname_in}", "hierarchy -check", "check -noinit",
                "blackbox =A:whitebox"]

    def lut_sites(self, stats: dict) -> int:
        """LUT4 sites a yosys result needs at least (its LUT4s and carry cells)."""
        return int(stats["luts"]) + self.carry_sites * int(stats["carries"])

    def count_cells(self, cells: dict) -> dict:
        """{luts, ffs, carries, brams, dsps} from yosys ``num_cells_by_type``."""
        return {
            "luts": sum(int(cells.get(k, 0)) for k in self.lut_cells),
            "ffs": sum(int(v) for k, v in cells.items() if k.startswith(self.ff_prefixes)),
            "carries": sum(int(cells.get(k, 0)) for k in self.carry_cells),
            "brams": sum(int(v) for k, v in cells.items() if k.startswith(self.bram_prefixes)),
            "dsps": sum(int(cells.get(k, 0)) for k in self.dsp_cells),
        }


ICE40 = Family(
    name="ice40",
    synth_command="synth_ice40 -device u",
    nextpnr="nextpnr-ice40", constraints_option="--pcf",
    placed_option="--asc", placed_file="top.asc",
    packer="icepack", bitstream_file="top.bin",
    lut_cells=("SB_LUT4",), carry_cells=("SB_CARRY",), ff_prefixes=("SB_DFF",),
    bram_prefixes=("SB_RAM40",), dsp_cells=("SB_MAC16",),
    lc_bels=("ICESTORM_LC",),
)

ECP5 = Family(
    name="ecp5",
    synth_command="synth_ecp5",
    skip_autoname_in="check",
    nextpnr="nextpnr-ecp5", constraints_option="--lpf",
    placed_option="--textcfg", placed_file="top.config",
    packer="ecppack", bitstream_file="top.bit",
    lut_cells=("LUT4",), carry_cells=("CCU2C",), ff_prefixes=("TRELLIS_FF",),
    bram_prefixes=("DP16KD", "PDPW16KD"), dsp_cells=("MULT18X18D", "ALU54B"),
    lc_bels=("TRELLIS_COMB", "TRELLIS_FF"),
    carry_sites=2,
)

FAMILIES = {f.name: f for f in (ICE40, ECP5)}
