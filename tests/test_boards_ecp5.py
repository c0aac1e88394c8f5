"""The ULX3S-85F (ECP5) board: registry, EHXPLLL parameters, the top's files and constraints, the
ECP5 report parsing, the commands' errors, and (synth) the real yosys/nextpnr-ecp5/ecppack flow on a
small random netlist, with the oscillator and with the PLL.

The ULX3S top embeds the same ``ClassifierTop`` (UART, streaming encoder, core) as the iCEBreaker,
so the core's and the top's Verilator parity tests (tests/test_sim_parity.py, test_board_top.py)
cover its datapath; what is new here is the clocking, the pins and the toolchain.
"""

from __future__ import annotations

import json
import re
import sys

import numpy as np
import pytest

from logicforge import cli
from logicforge.boards import flow
from logicforge.boards.ecp5_pll import DIV_RANGE, OUT_MHZ, PFD_MHZ, VCO_MHZ, ecp5_pll_config
from logicforge.boards.family import ECP5, ICE40
from logicforge.boards.registry import board_names, get_board
from logicforge.errors import LogicforgeError
from logicforge.netlist import format as nf
from logicforge.netlist.generate import random_netlist

BOARD = "ulx3s-85f"


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


# -- registry --------------------------------------------------------------------------------------

def test_registry_knows_the_ulx3s():
    assert BOARD in board_names()
    b = get_board("ULX3S-85F")
    assert (b.name, b.family, b.has_top, b.lcs_available) == (BOARD, "ecp5", True, 83640)
    assert b.bitstream_file == "top.bit" and get_board("icebreaker").bitstream_file == "top.bin"
    assert b.osc_mhz == 25.0


def test_nextpnr_args_match_the_amaranth_platform():
    """Our nextpnr-ecp5 device/package/speed options say what amaranth-boards' platform says."""
    from amaranth_boards.ulx3s import ULX3S_85F_Platform

    p = ULX3S_85F_Platform()
    b = get_board(BOARD)
    args = list(b.nextpnr_args)
    assert args[0] == p._nextpnr_device_options[p.device]
    assert args[args.index("--package") + 1] == p._nextpnr_package_options[p.package].upper()
    assert args[args.index("--speed") + 1] == p.speed
    assert b.device.startswith(p.device) and p.speed in b.device and p.package in b.device


def test_unknown_board_names_the_ulx3s(small_net_file, tmp_path, capsys):
    rc = cli.main(["synth", "--board", "ulx3s-12f", "--netlist", str(small_net_file), "--build-dir", str(tmp_path)])
    err = _one_line_error(capsys)
    assert rc == 2 and "unknown board 'ulx3s-12f'" in err and "ulx3s-85f" in err


def test_generic_bitstream_names_the_real_boards(small_net, tmp_path):
    with pytest.raises(LogicforgeError, match="no bitstream") as e:
        flow.bitstream(small_net, "generic", tmp_path)
    assert "icebreaker" in str(e.value) and BOARD in str(e.value)


def test_program_without_openfpgaloader_says_how_to_get_it(small_net_file, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("OPENFPGALOADER", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory
    rc = cli.main(["program", "--board", BOARD, "--netlist", str(small_net_file), "--build-dir", str(tmp_path)])
    err = _one_line_error(capsys)
    assert rc == 2 and "openFPGALoader not found" in err and "openfpgaloader" in err
    assert not (tmp_path / "small").exists()  # failed before building anything


# -- EHXPLLL parameters ----------------------------------------------------------------------------

@pytest.mark.parametrize("mhz", [10, 20, 30, 40, 50, 60, 75, 80, 100, 120, 125, 133, 150, 200, 250, 400])
def test_ecp5_pll_config_is_valid_and_close(mhz):
    c = ecp5_pll_config(25.0, mhz)
    for div in (c.clki_div, c.clkfb_div, c.clkop_div):
        assert DIV_RANGE[0] <= div <= DIV_RANGE[1]
    f_pfd = 25.0 / c.clki_div
    f_out = f_pfd * c.clkfb_div
    assert PFD_MHZ[0] <= f_pfd <= PFD_MHZ[1]
    assert VCO_MHZ[0] <= f_out * c.clkop_div <= VCO_MHZ[1] and OUT_MHZ[0] <= f_out <= OUT_MHZ[1]
    assert c.f_out_mhz == pytest.approx(f_out) and c.f_vco_mhz == pytest.approx(f_out * c.clkop_div)
    assert abs(c.f_out_mhz - mhz) <= 0.01 * mhz
    assert c.clkop_cphase == c.clkop_div - 1


def test_ecp5_pll_exact_where_possible():
    """25 MHz * n / m: 100 MHz is exact (CLKFB_DIV 4), and the VCO runs as fast as allowed."""
    c = ecp5_pll_config(25.0, 100.0)
    assert c.f_out_mhz == pytest.approx(100.0) and c.clkfb_div / c.clki_div == pytest.approx(4.0)
    assert c.f_vco_mhz == pytest.approx(800.0)  # the highest VCO in range (CLKOP_DIV 8)
    assert ecp5_pll_config(25.0, 33.3).f_out_mhz == pytest.approx(100 / 3)  # 25 * 4 / 3, 0.1 % off


@pytest.mark.parametrize("mhz", [OUT_MHZ[0] - 1, OUT_MHZ[1] + 1])
def test_ecp5_pll_out_of_range(mhz):
    with pytest.raises(LogicforgeError, match="ECP5 PLL"):
        ecp5_pll_config(25.0, mhz)


def test_ecp5_pll_unreachable_within_one_percent():
    """12 MHz = 25 * 12/25 needs a 1 MHz PFD (below 3.125); the nearest is 12.5 MHz, 4 % off."""
    with pytest.raises(LogicforgeError, match=r"cannot make 12 MHz from 25 MHz \(nearest 12.500 MHz\)"):
        ecp5_pll_config(25.0, 12.0)


def test_clock_out_of_range_is_one_line(small_net_file, tmp_path, capsys):
    rc = cli.main(["synth", "--board", BOARD, "--clock-mhz", "500", "--netlist", str(small_net_file),
                   "--build-dir", str(tmp_path)])
    err = _one_line_error(capsys)
    assert rc == 2 and "--clock-mhz 500" in err and "10-400 MHz" in err and "25 uses the oscillator" in err


# -- the top's files -------------------------------------------------------------------------------

def test_ulx3s_top_files(small_net, tmp_path):
    paths = get_board(BOARD).write_top(small_net, tmp_path, {"layers_per_stage": 2})
    assert sorted(p.name for p in paths) == ["top.v", "top_info.json", "ulx3s.lpf"]
    lpf = (tmp_path / "ulx3s.lpf").read_text()
    for site, port in (("G2", "clk25_0__io"), ("M1", "uart_0__rx__io"), ("L4", "uart_0__tx__io"),
                       ("B2", "led_0__io"), ("C2", "led_1__io"), ("H3", "led_7__io")):
        assert f'LOCATE COMP "{port}" SITE "{site}";' in lpf
    assert 'FREQUENCY PORT "clk25_0__io" 25000000' in lpf
    top = (tmp_path / "top.v").read_text()
    assert "module top(" in top and "EHXPLLL" not in top
    info = json.loads((tmp_path / "top_info.json").read_text())
    assert info["clock_mhz"] == 25.0 and info["clock_source"] == "oscillator" and info["pll"] is None
    assert info["baud_divisor"] == 217 and info["bytes_per_sample"] == 4 and info["device"] == "LFE5U-85F-6BG381C"
    assert info["layers_per_stage"] == 2


def test_ulx3s_top_with_pll(small_net):
    files, info = get_board(BOARD).generate_top(small_net, clock_mhz=100, baud=115200)
    top, lpf = files["top.v"], files["ulx3s.lpf"]
    inst = re.search(r"EHXPLLL\s*#\((.*?)\)\s*(\w+)\s*\((.*?)\);", top, re.S)
    assert inst, "no EHXPLLL instance in top.v"
    params = dict(re.findall(r"\.(\w+)\(([^()]*)\)", inst.group(1)))
    c = ecp5_pll_config(25.0, 100.0)
    assert {k: int(params[k].split("'d")[-1]) for k in ("CLKI_DIV", "CLKFB_DIV", "CLKOP_DIV", "CLKOP_CPHASE")} == \
        {"CLKI_DIV": c.clki_div, "CLKFB_DIV": c.clkfb_div, "CLKOP_DIV": c.clkop_div, "CLKOP_CPHASE": c.clkop_div - 1}
    assert params["FEEDBK_PATH"] == '"CLKOP"' and params["CLKOP_ENABLE"] == '"ENABLED"'
    ports = dict(re.findall(r"\.(\w+)\(([^()]*)\)", inst.group(3)))
    assert ports["CLKFB"] == ports["CLKOP"]  # CLKOP is its own feedback
    assert 'FREQUENCY NET "clk_pll" 100000000' in lpf
    assert info["clock_source"] == "pll" and info["clock_mhz"] == 100.0
    assert info["pll"]["primitive"] == "EHXPLLL" and info["pll"]["vco_mhz"] == pytest.approx(800.0)
    assert info["baud_divisor"] == 868  # 100 MHz / 115200


def test_ulx3s_and_icebreaker_embed_the_same_classifier(small_net):
    """Both board tops wrap one ClassifierTop: the same core latency, bytes and layers per stage."""
    _, ice = get_board("icebreaker").generate_top(small_net, layers_per_stage=1)
    _, ecp = get_board(BOARD).generate_top(small_net, layers_per_stage=1)
    for key in ("core_latency_cycles", "bytes_per_sample", "bytes_per_feature", "layers_per_stage"):
        assert ice[key] == ecp[key], key


# -- ECP5 reports ----------------------------------------------------------------------------------

def test_parse_ecp5_reports(tmp_path):
    (tmp_path / "r.json").write_text(json.dumps({
        "utilization": {"TRELLIS_COMB": {"used": 900, "available": 83640},
                        "TRELLIS_FF": {"used": 1200, "available": 83640},
                        "DP16KD": {"used": 2, "available": 208}},
        "fmax": {"$glbnet$clk": {"achieved": 151.2, "constraint": 25.0}},
    }))
    r = flow.parse_nextpnr_report(tmp_path / "r.json", ECP5)
    assert r["lcs"] == 1200 and r["lcs_available"] == 83640 and r["fmax_mhz"] == 151.2
    assert flow.parse_nextpnr_report(tmp_path / "r.json", ICE40)["lcs"] is None  # no ICESTORM_LC there
    (tmp_path / "s.json").write_text(json.dumps({"design": {"num_cells_by_type": {
        "LUT4": 500, "TRELLIS_FF": 640, "CCU2C": 30, "DP16KD": 2, "PFUMX": 4, "TRELLIS_IO": 9}}}))
    s = flow.parse_yosys_stat(tmp_path / "s.json", ECP5)
    assert (s["luts"], s["ffs"], s["carries"], s["brams"]) == (500, 640, 30, 2)
    assert ECP5.lut_sites(s) == 560 and ICE40.lut_sites(s) == 500
    # the LC split counts a CCU2C as two LUT4 sites on ECP5 (not on iCE40, where SB_CARRY sits beside a LUT)
    parts = {"encoder": {"luts": 10, "ffs": 30, "carries": 15}, "gates": {"luts": 100, "ffs": 50, "carries": 0},
             "head": {"luts": 40, "ffs": 60, "carries": 20}, "top": {"luts": 5, "ffs": 8, "carries": 0}}
    assert flow.lc_split(parts, None, ECP5) == {"encoder": 40, "gates": 100, "head": 80, "top": 8}
    assert flow.lc_split(parts, None, ICE40) == {"encoder": 30, "gates": 100, "head": 60, "top": 8}
    assert sum(flow.lc_split(parts, 250, ECP5).values()) == 250


def test_ecp5_yosys_script_leaves_out_autoname():
    """synth_ecp5 runs up to its check stage, then that stage's commands less ``autoname`` (43 % of
    yosys's time on the Fashion-MNIST design); the iCE40 script is the plain synth_ice40 call."""
    script = ECP5.synth_script("top")
    assert script[0] == "synth_ecp5 -top top -run :check"
    assert script[1:] == ["hierarchy -check", "check -noinit", "blackbox =A:whitebox"]
    assert not any("autoname" in c for c in script)
    assert ECP5.synth_script("top", "-noflatten")[0] == "synth_ecp5 -noflatten -top top -run :check"
    assert ICE40.synth_script("top", "-noflatten") == ["synth_ice40 -device u -noflatten -top top"]


FAKE_NEXTPNR = r'''#!{python}
"""Stands in for nextpnr-ecp5 that cannot place the design."""
import sys
print("Info:          TRELLIS_COMB: 90211/83640   107%")
print("ERROR: Unable to place cell 'x', no BELs remaining to implement cell type 'TRELLIS_COMB'")
sys.exit(1)
'''


@pytest.mark.synth
def test_synth_reports_an_ecp5_design_that_does_not_fit(small_net_file, tmp_path, monkeypatch, capsys):
    """nextpnr-ecp5's placement failure becomes fits=false and one line naming the counts."""
    exe = tmp_path / "fake-nextpnr-ecp5"
    exe.write_text(FAKE_NEXTPNR.format(python=sys.executable))
    exe.chmod(0o755)
    monkeypatch.setenv("NEXTPNR_ECP5", str(exe))
    rc = cli.main(["synth", "--board", BOARD, "--netlist", str(small_net_file), "--build-dir", str(tmp_path)])
    err = _one_line_error(capsys)
    assert rc == 2 and "does not fit the ulx3s-85f" in err and "90211" in err and "83640" in err
    r = json.loads((tmp_path / "small" / BOARD / "synth.json").read_text())
    assert r["fits"] is False and r["lcs"] == 90211 and r["family"] == "ecp5"


def test_yosys_count_over_the_device_skips_nextpnr(small_net, tmp_path, monkeypatch):
    """More flip-flops (or LUT4 sites: LUT4 + 2 per CCU2C) than the device has cells: fits=false
    straight after yosys, and nextpnr is never started."""
    calls = []

    def fake_yosys(sources, top, outdir, device_flag="u", family=ICE40):
        calls.append(family.name)
        return {"cells": {}, "luts": 1000, "ffs": 90000, "carries": 10, "brams": 0, "dsps": 0}, 0.1

    def no_nextpnr(*a, **k):
        raise AssertionError("nextpnr must not run")

    monkeypatch.setattr(flow, "yosys_synth", fake_yosys)
    monkeypatch.setattr(flow, "run_tool", no_nextpnr)
    r = flow.synth(small_net, BOARD, tmp_path, log=lambda _m: None)
    assert calls == ["ecp5"] and r["fits"] is False and r["lcs"] == 90000 and "flip-flops" in r["note"]
    with pytest.raises(LogicforgeError, match="needs about 90000 logic cells, the device has 83640"):
        flow.check(r)

    monkeypatch.setattr(flow, "yosys_synth", lambda *a, **k: (
        {"cells": {}, "luts": 80000, "ffs": 100, "carries": 2000, "brams": 0, "dsps": 0}, 0.1))
    r = flow.synth(small_net, BOARD, tmp_path, log=lambda _m: None)
    assert r["fits"] is False and r["lcs"] == 84000 and "LUT4s" in r["note"]


def test_placement_for_wirelength_above_half_the_device():
    """auto: timing-driven up to the board's wirelength_fill, --no-tmdriv above it; the iCEBreaker
    always places for timing; an explicit choice wins; an unknown one is a one-line error."""
    b, ice = get_board(BOARD), get_board("icebreaker")
    half = b.lcs_available // 2
    assert flow.choose_placement(b, half) == "timing"
    assert flow.choose_placement(b, half + 1) == "wirelength"
    assert flow.choose_placement(b, b.lcs_available, "timing") == "timing"
    assert flow.choose_placement(b, 10, "wirelength") == "wirelength"
    assert flow.choose_placement(ice, ice.lcs_available) == "timing"
    with pytest.raises(LogicforgeError, match="placement must be one of auto, timing, wirelength, got 'fast'"):
        flow.choose_placement(b, 10, "fast")


@pytest.mark.parametrize("luts, placement, wanted", [
    (50_000, "auto", "wirelength"), (30_000, "auto", "timing"), (50_000, "timing", "timing")])
def test_synth_passes_the_placement_to_nextpnr(small_net, tmp_path, monkeypatch, luts, placement, wanted):
    """The placement synth chooses reaches nextpnr's command line (--no-tmdriv), and
    the design hash tells the two placements apart (bitstream never reuses the other one)."""
    seen = []

    class Stop(Exception):
        pass

    def fake_nextpnr(tool, args, **kw):
        seen.append(list(args))
        raise Stop

    monkeypatch.setattr(flow, "yosys_synth", lambda *a, **k: (
        {"cells": {}, "luts": luts, "ffs": 100, "carries": 0, "brams": 0, "dsps": 0}, 0.1))
    monkeypatch.setattr(flow, "run_tool", fake_nextpnr)
    with pytest.raises(Stop):
        flow.synth(small_net, BOARD, tmp_path, log=lambda _m: None, placement=placement)
    assert ("--no-tmdriv" in seen[0]) == (wanted == "wirelength")
    files = {"top.v": "module top; endmodule"}
    assert flow._design_hash(files, get_board(BOARD), 50.0, "timing") != \
        flow._design_hash(files, get_board(BOARD), 50.0, "wirelength")


def test_popcount_levels_per_stage_reaches_the_top(small_net_file, tmp_path, capsys):
    """--popcount-levels-per-stage is checked in one line and reaches the core inside the top."""
    rc = cli.main(["synth", "--board", BOARD, "--popcount-levels-per-stage", "0", "--netlist",
                   str(small_net_file), "--build-dir", str(tmp_path)])
    err = _one_line_error(capsys)
    assert rc == 2 and "--popcount-levels-per-stage must be at least 1, got 0" in err
    wide = random_netlist(np.random.default_rng(3), features=4, feature_width=4, layer_widths=(64,),
                          classes=2, group_size=32)  # a popcount of several adder levels
    # the popcount tree belongs to the tree head (the top's default head is serial)
    _, one = get_board(BOARD).generate_top(wide, popcount_levels_per_stage=1, head="tree")
    _, two = get_board(BOARD).generate_top(wide, popcount_levels_per_stage=2, head="tree")
    assert (one["popcount_levels_per_stage"], two["popcount_levels_per_stage"]) == (1, 2)
    assert two["core_latency_cycles"] < one["core_latency_cycles"]


# -- the real tools (YoWASP) ----------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.synth
def test_synth_and_bitstream_ulx3s(small_net_file, tmp_path, capsys):
    """synth through the CLI at 25 MHz, then bitstream reusing the placed design: an ECP5 image."""
    rc = cli.main(["synth", "--board", BOARD, "--netlist", str(small_net_file), "--build-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0, out
    outdir = tmp_path / "small" / BOARD
    r = json.loads((outdir / "synth.json").read_text())
    assert r["family"] == "ecp5" and r["device"] == "LFE5U-85F-6BG381C"
    assert r["fits"] is True and r["meets_timing"] is True
    assert 0 < r["lcs"] <= r["lcs_available"] == 83640
    util = r["utilization"]
    assert r["lcs"] == max(util["TRELLIS_COMB"]["used"], util["TRELLIS_FF"]["used"])
    assert r["luts"] > 0 and r["ffs"] > 0 and r["fmax_mhz"] >= r["clock_mhz"] == 25.0
    assert sum(r["lc_split"].values()) == r["lcs"] and r["parts"]["gates"]["luts"] > 0
    assert "LCs" in out and "TRELLIS_COMB" in out

    messages = []
    bit = flow.bitstream(nf.load(small_net_file), BOARD, outdir, log=messages.append)
    assert any("reusing" in m for m in messages), messages
    assert bit.name == "top.bit"
    data = bit.read_bytes()
    # a comment block (FF 00 "Part: ..." 00 FF), the ECP5 preamble, and the 85F's IDCODE (VERIFY_ID)
    assert data[:2] == b"\xff\x00" and b"Part: LFE5U-85F" in data[:64]
    assert b"\xff\xff\xbd\xb3" in data[:64] and bytes.fromhex("41113043") in data[:128]


@pytest.mark.slow
@pytest.mark.synth
def test_synth_ulx3s_with_the_pll(small_net, tmp_path):
    """--clock-mhz 100: EHXPLLL is placed, the design is timed against 100 MHz and closes."""
    r = flow.synth(small_net, BOARD, tmp_path, clock_mhz=100, split=False, log=lambda _m: None)
    assert r["fits"] is True and r["clock_mhz"] == 100.0 and r["top"]["clock_source"] == "pll"
    assert r["utilization"]["EHXPLLL"]["used"] == 1
    constraints = {c["constraint_mhz"] for c in r["clocks"].values()}
    assert 100.0 in constraints, r["clocks"]
    assert r["fmax_mhz"] >= 100.0 and r["meets_timing"] is True


def test_bitstream_generates_the_top_once(small_net, tmp_path, monkeypatch):
    """bitstream() hands the top it generated (to look for a reusable placed design) to synth()
    instead of generating it again: on the Fashion-MNIST design one generation takes minutes."""
    board_cls = type(get_board(BOARD))
    real = board_cls.generate_top
    calls = []

    def counting(self, *a, **kw):
        calls.append(kw)
        return real(self, *a, **kw)

    seen = {}

    def fake_synth(netlist, board_name, outdir, **kw):
        seen.update(kw)
        return {"device": "LFE5U-85F", "board": board_name, "fits": False, "lcs": 90000, "lcs_available": 83640}

    monkeypatch.setattr(board_cls, "generate_top", counting)
    monkeypatch.setattr(flow, "synth", fake_synth)
    monkeypatch.setattr(flow, "summary", lambda result: "")
    with pytest.raises(LogicforgeError, match="does not fit"):
        flow.bitstream(small_net, BOARD, tmp_path, clock_mhz=100)
    assert len(calls) == 1
    files, info, seconds = seen["generated"]
    assert "top.v" in files and info["clock_mhz"] == pytest.approx(100, rel=0.01) and seconds >= 0
