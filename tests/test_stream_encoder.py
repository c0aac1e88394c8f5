# amaranth: UnusedElaboratable=no
"""The board top's threshold encoders (hdl/stream.py, hdl/shift_encoder.py) and the pre-encoded core,
in Amaranth's simulator, against the reference encoding ``x[f] >= T``."""

from __future__ import annotations

import numpy as np
import pytest

from logicforge.netlist import generate, reference

pytest.importorskip("amaranth", reason="amaranth is needed to build the encoder")

from amaranth.hdl import ClockDomain, Module  # noqa: E402
from amaranth.sim import Simulator  # noqa: E402

from logicforge.errors import LogicforgeError  # noqa: E402
from logicforge.hdl import pipeline  # noqa: E402
from logicforge.hdl.core import LogicNetCore  # noqa: E402
from logicforge.hdl.shift_encoder import (ShiftEncoder, chain_order, shift_encoder_latency,  # noqa: E402
                                          shift_min_spacing, shift_pipeline_stages)
from logicforge.hdl.stream import (MAX_FANOUT, StreamingEncoder, compare_costs, compare_plan,  # noqa: E402
                                   compare_stages, line_plan, min_valid_spacing, slot_table,
                                   stream_encoder_latency)


#: Both encoders keep one contract (ports, ``latency``, ``min_spacing``): every behavioural test runs on each.
ENCODERS = [pytest.param(StreamingEncoder, id="stream"), pytest.param(ShiftEncoder, id="shift")]


def _comparators(rng, features, width, *, every_threshold_feature=0, empty=(1,)):
    """(feature, threshold) pairs: feature ``every_threshold_feature`` gets every T in 0..2**W
    (constants at both ends), features in ``empty`` none, the others a random subset."""
    comps = []
    for f in range(features):
        if f in empty:
            continue
        if f == every_threshold_feature:
            ts = list(range(0, (1 << width) + 1))
        else:
            k = int(rng.integers(1, 5))
            ts = sorted(rng.choice(np.arange(1, 1 << width), size=min(k, (1 << width) - 1), replace=False).tolist())
        comps += [(f, int(t)) for t in ts]
    order = rng.permutation(len(comps))  # the core's order is not feature-major in general
    return [comps[i] for i in order]


def run_encoder(enc, samples, rng, *, restart_after=None, drop_after_last=None,
                tight=False, trace=None):
    """Feed samples feature by feature with random gaps of at least ``enc.min_spacing`` cycles
    (exactly that with ``tight``); return (out_bits, cycles since the sample's last ``valid``) at
    every out_valid. ``restart_after=(sample, k)``: after k features of that sample, restart and
    send it again from feature 0. ``drop_after_last=(sample, d)``: restart ``d`` cycles after that
    sample's last ``valid`` (it is dropped when ``d < enc.latency``)."""
    got = []
    spacing = enc.min_spacing
    top = Module()
    top.domains.sync = ClockDomain("sync")
    top.submodules.enc = enc

    async def bench(ctx):
        state = {"cycle": 0, "last": None}

        async def tick(n=1):
            for _ in range(n):
                if ctx.get(enc.out_valid):
                    got.append((ctx.get(enc.out_bits), state["cycle"] - state["last"]))
                if trace is not None:
                    trace.append((ctx.get(enc.out_valid), ctx.get(enc.out_bits)))
                await ctx.tick()
                state["cycle"] += 1

        def gap():
            return spacing - 1 if tight else int(rng.integers(spacing - 1, spacing + 2))

        async def restart():
            ctx.set(enc.restart, 1)
            await tick()
            ctx.set(enc.restart, 0)
            await tick(spacing - 1)

        await restart()  # once after reset
        for si, row in enumerate(samples):
            if restart_after is not None and restart_after[0] == si:
                for v in row[:restart_after[1]]:
                    ctx.set(enc.value, int(v))
                    ctx.set(enc.valid, 1)
                    await tick()
                    ctx.set(enc.valid, 0)
                    await tick(gap())
                await restart()
            for f, v in enumerate(row):
                ctx.set(enc.value, int(v))
                ctx.set(enc.valid, 1)
                if f == len(row) - 1:
                    state["last"] = state["cycle"]
                await tick()
                ctx.set(enc.valid, 0)
                if drop_after_last is not None and drop_after_last[0] == si and f == len(row) - 1:
                    await tick(drop_after_last[1] - 1)
                    await restart()
                    continue
                ctx.set(enc.value, int(rng.integers(0, 1 << enc.feature_width)))  # read only at valid
                await tick(gap())
        await tick(enc.latency + 3)

    sim = Simulator(top)
    sim.add_clock(1e-6, domain="sync")
    sim.add_testbench(bench)
    sim.run()
    return got


def _check(enc, comps, x, got):
    assert len(got) == len(x), "one out_valid per sample"
    for row, (bits, lat) in zip(x, got):
        assert lat == enc.latency
        expect = [int(row[f] >= t) for f, t in comps]
        assert [(bits >> i) & 1 for i in range(len(comps))] == expect


def test_structure_constants_follow_the_width():
    assert [compare_stages(w) for w in (1, 2, 3, 4, 5, 8, 9, 10, 16)] == [1, 1, 2, 2, 3, 3, 4, 4, 4]
    for w in range(1, 17):
        assert stream_encoder_latency(w) == compare_stages(w) + 2  # the result's copies, the write
        assert min_valid_spacing(w) == compare_stages(w) + 3
        levels = compare_plan(w)
        assert len(levels) == compare_stages(w) and levels[-1] == [1]
        luts, ffs = compare_costs(w)
        assert ffs >= luts >= 0
    assert compare_costs(5) == (6, 8)  # leaves ge, gt/eq, gt/eq (5 LUT4s); then ge and a carried gt/eq


@pytest.mark.parametrize("encoder", ENCODERS)
@pytest.mark.parametrize("width", [1, 2, 3, 5, 8, 10])
def test_encoder_matches_reference_encoding(encoder, width):
    """Every threshold of a feature (constants at both ends), random thresholds elsewhere, two
    features with no live bits; for W <= 8 the all-threshold feature takes every value."""
    rng = np.random.default_rng(width)
    F = 7
    every = 0 if width <= 5 else 3
    comps = _comparators(rng, F, width, every_threshold_feature=every, empty=(1, 5))
    enc = encoder(F, width, comps)
    assert enc.live_features == F - 2
    n = max(12, 1 << width) if width <= 8 else 12
    x = rng.integers(0, 1 << width, size=(n, F))
    if width <= 8:
        x[:, every] = rng.permutation(n) % (1 << width)
    x[0] = 0
    x[1] = (1 << width) - 1
    _check(enc, comps, x, run_encoder(enc, x, rng, restart_after=(3, 4)))


@pytest.mark.parametrize("encoder", ENCODERS)
@pytest.mark.parametrize("width", [3, 8])
def test_encoder_at_the_minimum_spacing_and_dropping_on_restart(encoder, width):
    rng = np.random.default_rng(40 + width)
    F = 9
    comps = _comparators(rng, F, width, every_threshold_feature=2, empty=(0, 8))
    enc = encoder(F, width, comps)
    x = rng.integers(0, 1 << width, size=(6, F))
    _check(enc, comps, x, run_encoder(enc, x, rng, tight=True))
    # a restart one cycle after a sample's last valid drops that sample; the next ones are whole
    got = run_encoder(enc, x, rng, drop_after_last=(2, 1), tight=True)
    _check(enc, comps, np.delete(x, 2, axis=0), got)


@pytest.mark.parametrize("encoder", ENCODERS)
def test_encoder_single_feature_and_no_comparators(encoder):
    rng = np.random.default_rng(0)
    enc = encoder(1, 4, [(0, 3), (0, 9)])
    x = rng.integers(0, 16, size=(6, 1))
    got = run_encoder(enc, x, rng)
    assert [b for b, _ in got] == [int(r[0] >= 3) | (int(r[0] >= 9) << 1) for r in x]
    empty = encoder(3, 4, [])
    assert len(run_encoder(empty, rng.integers(0, 16, size=(4, 3)), rng)) == 4


def test_line_plan_covers_every_live_feature_within_the_fanout():
    rng = np.random.default_rng(3)
    for features in (1, 5, 64, 784, 3000, 70000):
        live = sorted(set(rng.integers(0, features, size=min(features, 900)).tolist()))
        comps = [(f, int(t)) for f in live for t in range(1, int(rng.integers(2, 6)))]
        slots, _ = slot_table(features, 8, comps)
        plan = line_plan(features, slots)
        assert 1 <= len(plan["groups"]) <= 2  # at most two lines per bit: its write LUT has no room for more
        assert sorted(c for g in plan["groups"] for c in g) == list(range(len(plan["chunks"])))
        for lines in plan["lines"]:
            covered = sorted(f for copies in lines.values() for feats in copies for f in feats)
            assert covered == live
            for copies in lines.values():
                for feats in copies:
                    assert sum(len(slots[f]) for f in feats) <= max(MAX_FANOUT, max(len(slots[f]) for f in feats))
    with pytest.raises(LogicforgeError, match="features"):
        line_plan(1 << 20, [[]])


def test_streaming_encoder_with_many_features_uses_product_lines():
    """Past 2048 features the counter's upper chunks are decoded in two stages (product lines)."""
    rng = np.random.default_rng(9)
    F = 4100
    live = [0, 7, 8, 300, 2047, 2048, 2049, 4095, 4099]
    comps = [(f, int(t)) for f in live for t in sorted(rng.choice(np.arange(1, 8), size=2, replace=False))]
    enc = StreamingEncoder(F, 3, comps)
    assert enc.lines["pre"], "expected product lines"
    x = rng.integers(0, 8, size=(2, F))
    _check(enc, comps, x, run_encoder(enc, x, rng, tight=True))


@pytest.mark.parametrize("encoder", ENCODERS)
def test_encoder_with_two_upper_chunks_at_the_minimum_spacing(encoder):
    """129..2048 features (Fashion-MNIST: 784): the upper chunks form one group of product lines
    (no third group as a flip-flop enable), written correctly at the tightest spacing and after a
    restart that drops a sample."""
    rng = np.random.default_rng(11)
    F = 300
    live = sorted(set(rng.integers(0, F, size=120).tolist()) | {0, 7, 8, 127, 128, 255, 256, F - 1})
    comps = [(f, int(t)) for f in live for t in sorted(rng.choice(np.arange(0, 17), size=2, replace=False))]
    enc = encoder(F, 4, comps)
    if encoder is StreamingEncoder:
        assert len(enc.lines["groups"]) == 2 and len(enc.lines["groups"][1]) == 2 and enc.lines["pre"]
    x = rng.integers(0, 16, size=(3, F))
    _check(enc, comps, x, run_encoder(enc, x, rng, tight=True))
    got = run_encoder(enc, x, rng, drop_after_last=(1, 1), tight=True)
    _check(enc, comps, np.delete(x, 1, axis=0), got)


@pytest.mark.parametrize("encoder", ENCODERS)
def test_encoder_to_pre_encoded_core_matches_reference(encoder):
    rng = np.random.default_rng(5)
    net = generate.random_netlist(rng, features=6, feature_width=6, thresholds_per_feature=3,
                                  layer_widths=(30, 20), classes=4, group_size=5, unused_features=1)
    core = LogicNetCore(net, layers_per_stage=1, pre_encoded=True, with_scores=False, hierarchy=True)
    assert "in_data" not in core.signature.members and "out_scores" not in core.signature.members
    assert core.latency == pipeline.latency(depth=core.depth, layers_per_stage=1, group_size=5, classes=4,
                                            pre_encoded=True)
    assert core.latency == LogicNetCore(net, layers_per_stage=1).latency - pipeline.ENCODE_STAGES
    enc = encoder(net.features, net.feature_width, core.comparators)
    x = generate.random_features(rng, net, 20)
    _, classes = reference.evaluate(net, x)

    top = Module()
    top.domains.sync = ClockDomain("sync")
    top.submodules.enc = enc
    top.submodules.core = core
    top.d.comb += [core.in_valid.eq(enc.out_valid), core.in_bits.eq(enc.out_bits)]
    got = []

    async def bench(ctx):
        async def tick(n=1):
            for _ in range(n):
                if ctx.get(core.out_valid):
                    got.append(ctx.get(core.out_class))
                await ctx.tick()

        ctx.set(enc.restart, 1)  # once after reset
        await tick()
        ctx.set(enc.restart, 0)
        await tick(enc.min_spacing)
        for row in x:
            for v in row:
                ctx.set(enc.value, int(v))
                ctx.set(enc.valid, 1)
                await tick()
                ctx.set(enc.valid, 0)
                await tick(enc.min_spacing - 1)
        await tick(enc.latency + core.latency + 4)

    sim = Simulator(top)
    sim.add_clock(1e-6, domain="sync")
    sim.add_testbench(bench)
    sim.run()
    assert got == [int(c) for c in classes]


@pytest.mark.parametrize("encoder", ENCODERS)
def test_encoder_holds_a_sample_as_promised(encoder):
    """At the tightest spacing, ``out_bits`` stay those of ``out_valid`` for ``min_spacing -
    hold_margin`` cycles (what the board top checks against the core's ``input_hold_cycles``)."""
    rng = np.random.default_rng(21)
    F, width = 5, 4
    comps = _comparators(rng, F, width, every_threshold_feature=F - 1, empty=(2,))
    enc = encoder(F, width, comps)
    x = rng.integers(0, 16, size=(5, F))
    trace = []
    _check(enc, comps, x, run_encoder(enc, x, rng, tight=True, trace=trace))
    hold = enc.min_spacing - enc.hold_margin
    assert hold >= 1
    starts = [t for t, (v, _) in enumerate(trace) if v]
    assert len(starts) == len(x)
    for t in starts:
        assert all(bits == trace[t][1] for _, bits in trace[t:t + hold])


def test_shift_encoder_structure():
    """The chain holds the live bits feature by feature; the latency counts the last feature's
    thresholds; the spacing covers a feature's issues."""
    slots, _ = slot_table(4, 8, [(2, 9), (0, 5), (2, 3), (3, 0), (1, 256), (0, 200)])
    assert chain_order(slots) == [1, 5, 0, 2]  # feature 0: bits 1, 5; feature 2: bits 0, 2
    for w in (1, 4, 8, 10):
        assert shift_pipeline_stages(w) == compare_stages(w) + 2
        assert shift_encoder_latency(w, 3) == shift_pipeline_stages(w) + 4
    assert [shift_min_spacing(k) for k in (0, 1, 5)] == [3, 3, 7]
    enc = ShiftEncoder(4, 8, [(2, 9), (0, 5), (2, 3), (3, 0), (1, 256), (0, 200)])
    assert enc.chain_bits == 4 and enc.latency == shift_encoder_latency(8, 0)  # feature 3: a constant only
    assert enc.hold_margin == enc.max_slots == 2
