# amaranth: UnusedElaboratable=no
"""The streaming threshold encoder (hdl/stream.py) and the pre-encoded core, in Amaranth's
simulator, against the reference encoding ``x[f] >= T``."""

from __future__ import annotations

import numpy as np
import pytest

from logicforge.netlist import generate, reference

pytest.importorskip("amaranth", reason="amaranth is needed to build the encoder")

from amaranth.hdl import ClockDomain, Module  # noqa: E402
from amaranth.sim import Simulator  # noqa: E402

from logicforge.hdl import pipeline  # noqa: E402
from logicforge.hdl.core import LogicNetCore  # noqa: E402
from logicforge.hdl.stream import StreamingEncoder, compare_stages, min_valid_spacing, stream_encoder_latency  # noqa: E402


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


def run_encoder(enc: StreamingEncoder, samples, rng, *, restart_after=None):
    """Feed samples feature by feature with random gaps (>= 2 cycles); return out_bits at every
    out_valid. ``restart_after=(sample, k)``: after k features of that sample, restart and send it
    again from feature 0."""
    got = []
    top = Module()
    top.domains.sync = ClockDomain("sync")
    top.submodules.enc = enc
    spacing = enc.min_spacing

    async def bench(ctx):
        async def tick(n=1):
            for _ in range(n):
                if ctx.get(enc.out_valid):
                    got.append(ctx.get(enc.out_bits))
                await ctx.tick()

        ctx.set(enc.restart, 1)  # once after reset
        await tick()
        ctx.set(enc.restart, 0)
        await tick(spacing)
        for si, row in enumerate(samples):
            if restart_after is not None and restart_after[0] == si:
                for v in row[:restart_after[1]]:
                    ctx.set(enc.value, int(v))
                    ctx.set(enc.valid, 1)
                    await tick()
                    ctx.set(enc.valid, 0)
                    await tick(int(rng.integers(spacing - 1, spacing + 2)))
                ctx.set(enc.restart, 1)
                await tick()
                ctx.set(enc.restart, 0)
                await tick(spacing - 1)
            for v in row:
                ctx.set(enc.value, int(v))
                ctx.set(enc.valid, 1)
                await tick()
                ctx.set(enc.valid, 0)
                ctx.set(enc.value, int(rng.integers(0, 1 << enc.feature_width)))  # noise between features
                await tick(int(rng.integers(spacing - 1, spacing + 2)))
        await tick(enc.latency + 3)

    sim = Simulator(top)
    sim.add_clock(1e-6, domain="sync")
    sim.add_testbench(bench)
    sim.run()
    return got


@pytest.mark.parametrize("width", [1, 3, 5, 8, 10])
def test_streaming_encoder_matches_reference_encoding(width):
    rng = np.random.default_rng(width)
    F = 7
    comps = _comparators(rng, F, width, every_threshold_feature=0 if width <= 5 else 3, empty=(1, 5))
    enc = StreamingEncoder(F, width, comps)
    assert enc.live_features == F - 2
    x = rng.integers(0, 1 << width, size=(12, F))
    x[0] = 0
    x[1] = (1 << width) - 1
    got = run_encoder(enc, x, rng, restart_after=(3, 4))
    assert len(got) == len(x), "one out_valid per sample"
    for row, bits in zip(x, got):
        expect = [int(row[f] >= t) for f, t in comps]
        assert [(bits >> i) & 1 for i in range(len(comps))] == expect


def test_streaming_encoder_single_feature_and_no_comparators():
    rng = np.random.default_rng(0)
    enc = StreamingEncoder(1, 4, [(0, 3), (0, 9)])
    x = rng.integers(0, 16, size=(6, 1))
    got = run_encoder(enc, x, rng)
    assert got == [int(r[0] >= 3) | (int(r[0] >= 9) << 1) for r in x]
    empty = StreamingEncoder(3, 4, [])
    assert len(run_encoder(empty, rng.integers(0, 16, size=(4, 3)), rng)) == 4


def test_streaming_encoder_to_pre_encoded_core_matches_reference():
    rng = np.random.default_rng(5)
    net = generate.random_netlist(rng, features=6, feature_width=6, thresholds_per_feature=3,
                                  layer_widths=(30, 20), classes=4, group_size=5, unused_features=1)
    core = LogicNetCore(net, layers_per_stage=1, pre_encoded=True, with_scores=False, hierarchy=True)
    assert "in_data" not in core.signature.members and "out_scores" not in core.signature.members
    assert core.latency == pipeline.latency(depth=core.depth, layers_per_stage=1, group_size=5, classes=4,
                                            pre_encoded=True)
    assert core.latency == LogicNetCore(net, layers_per_stage=1).latency - pipeline.ENCODE_STAGES
    enc = StreamingEncoder(net.features, net.feature_width, core.comparators)
    x = generate.random_features(rng, net, 20)
    _, classes = reference.evaluate(net, x)

    top = Module()
    top.domains.sync = ClockDomain("sync")
    top.submodules.enc = enc
    top.submodules.core = core
    top.d.comb += [core.in_valid.eq(enc.out_valid), core.in_bits.eq(enc.out_bits)]
    got = []
    spacing = enc.min_spacing

    async def bench(ctx):
        async def tick(n=1):
            for _ in range(n):
                if ctx.get(core.out_valid):
                    got.append(ctx.get(core.out_class))
                await ctx.tick()

        ctx.set(enc.restart, 1)  # once after reset
        await tick()
        ctx.set(enc.restart, 0)
        await tick(spacing)
        for row in x:
            for v in row:
                ctx.set(enc.value, int(v))
                ctx.set(enc.valid, 1)
                await tick()
                ctx.set(enc.valid, 0)
                await tick(spacing - 1)
        await tick(enc.latency + core.latency + 4)

    sim = Simulator(top)
    sim.add_clock(1e-6, domain="sync")
    sim.add_testbench(bench)
    sim.run()
    assert got == [int(c) for c in classes]
