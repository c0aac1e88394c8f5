# amaranth: UnusedElaboratable=no
"""LogicNetCore in Amaranth's simulator against the reference evaluator; its Verilog's ports."""

from __future__ import annotations

import argparse
import json
import re

import numpy as np
import pytest

from logicforge.errors import LogicforgeError
from logicforge.netlist import gates, generate, passes, reference
from logicforge.netlist.format import Layer, Netlist

amaranth = pytest.importorskip("amaranth", reason="amaranth is needed to build the core")

from amaranth.hdl import ClockDomain, Module  # noqa: E402
from amaranth.sim import Simulator  # noqa: E402

from logicforge.hdl import pipeline  # noqa: E402
from logicforge.hdl.core import LogicNetCore  # noqa: E402
from logicforge.hdl.head import ClassifierHead  # noqa: E402
from logicforge.hdl.verilog import core_verilog  # noqa: E402


def pack_features(net: Netlist, row) -> int:
    return sum(int(v) << (f * net.feature_width) for f, v in enumerate(row))


def run_core(core: LogicNetCore, cycles: int, drive):
    """Simulate ``core`` for ``cycles`` clocks, calling ``drive(ctx, t, rst)`` to set its inputs
    (and the domain's reset ``rst``) before each edge; return per cycle (out_valid, out_class,
    [scores]) sampled before that cycle's clock edge."""
    S, K = core.score_width, core.classes
    rec = []
    top = Module()
    top.domains.sync = sync = ClockDomain("sync")
    top.submodules.core = core

    async def bench(ctx):
        for t in range(cycles):
            drive(ctx, t, sync.rst)
            scores = ctx.get(core.out_scores)
            rec.append((ctx.get(core.out_valid), ctx.get(core.out_class),
                        [(scores >> (k * S)) & ((1 << S) - 1) for k in range(K)]))
            await ctx.tick()

    sim = Simulator(top)
    sim.add_clock(1e-6, domain="sync")
    sim.add_testbench(bench)
    sim.run()
    return rec


def simulate(core: LogicNetCore, net: Netlist, x, valid, reset_cycles=()):
    """Drive one row of ``x`` per clock (``in_valid = valid[t]``), then idle for the latency;
    return per cycle (out_valid, out_class, [scores]) sampled before that cycle's clock edge."""
    n = len(x)

    def drive(ctx, t, rst):
        ctx.set(rst, int(t in reset_cycles))
        if t < n:
            ctx.set(core.in_data, pack_features(net, x[t]))
            ctx.set(core.in_valid, int(valid[t]))
        else:
            ctx.set(core.in_valid, 0)

    return run_core(core, n + core.latency + 2, drive)


def check_stream(core, net, x, valid):
    rec = simulate(core, net, x, valid)
    L = core.latency
    scores, classes = reference.evaluate(net, x)
    expected_valid = [0] * L + [int(v) for v in valid] + [0] * 2
    assert [r[0] for r in rec] == expected_valid
    for t in np.nonzero(valid)[0]:
        _, cls, sc = rec[t + L]
        assert sc == list(scores[t]), f"sample {t}: scores"
        assert cls == classes[t], f"sample {t}: class"


#: (popcount levels, argmax levels) of each net's head, worked out by hand: G = 1 needs no popcount,
#: G <= 4 one LUT level, G = 5 a LUT level and one adder; K classes need ceil(log2 K) argmax levels,
#: each of two register stages (compare, then select).
HEAD_LEVELS = {"all_ops": (2, 2), "wires": (1, 2), "g1_k2": (0, 1), "k10_unused": (1, 4)}

NETS = {
    "all_ops": dict(layer_widths=(40, 30, 20, 20), classes=3, group_size=5),
    # pass-through heavy: signals skip levels and stages (delay registers)
    "wires": dict(ops=[gates.A, gates.NOT_B, gates.AND, gates.XOR, gates.NOT_A], layer_widths=(24, 24, 24, 24)),
    "g1_k2": dict(classes=2, group_size=1, layer_widths=(16, 8)),
    "k10_unused": dict(features=8, unused_features=2, classes=10, group_size=3, layer_widths=(48, 40)),
}


@pytest.fixture(scope="module")
def nets():
    rng = np.random.default_rng(1234)
    return {name: generate.random_netlist(rng, **kw) for name, kw in NETS.items()}


@pytest.mark.parametrize("lps,plps", [(1, 1), (2, 2), (3, 1), (2, 3)])
@pytest.mark.parametrize("name", sorted(NETS))
def test_core_matches_reference_streaming(nets, name, lps, plps):
    net = nets[name]
    rng = np.random.default_rng(lps)
    core = LogicNetCore(net, layers_per_stage=lps, popcount_levels_per_stage=plps)
    popcount, argmax = HEAD_LEVELS[name]
    assert core.latency == 1 + -(-core.depth // lps) + -(-popcount // plps) + 2 * argmax  # then simulated
    x = generate.random_features(rng, net, 150)
    # back-to-back first, then with bubbles
    valid = np.ones(150, dtype=bool)
    valid[100:] = rng.random(50) < 0.6
    check_stream(core, net, x, valid)


def test_ties_pick_smallest_class():
    # scores: class k's bits are constants or copies of one input; many exact ties
    rng = np.random.default_rng(9)
    net = generate.random_netlist(rng, features=2, thresholds_per_feature=1, classes=5, group_size=2,
                                  ops=[gates.A, gates.FALSE, gates.TRUE], layer_widths=(4,))
    x = np.array([[a, b] for a in range(16) for b in range(16)])
    scores, classes = reference.evaluate(net, x)
    assert any((s == s.max()).sum() > 1 for s in scores), "netlist should produce ties"
    for lps in (1, 2):
        check_stream(LogicNetCore(net, layers_per_stage=lps), net, x, np.ones(len(x), dtype=bool))


def test_constant_network_has_no_gates_or_comparators():
    net = Netlist(2, 4, [[1], [2]],
                  [Layer([gates.TRUE, gates.FALSE], [0, 1], [1, 0]),
                   Layer([gates.AND, gates.OR, gates.XNOR, gates.A], [0, 0, 0, 1], [1, 1, 1, 0])],
                  ["a", "b"], 2).validate()
    core = LogicNetCore(net)
    assert core.graph.num_gates == 0 and core.comparators == [] and core.depth == 0
    x = np.array([[a, b] for a in range(16) for b in range(16)])
    check_stream(core, net, x, np.ones(len(x), dtype=bool))


def test_unoptimised_core_is_bit_exact(nets):
    net = nets["all_ops"]
    core = LogicNetCore(net, layers_per_stage=2, optimize=False)
    assert core.passes_report == [] and core.graph.num_gates == net.num_gates
    rng = np.random.default_rng(4)
    check_stream(core, net, generate.random_features(rng, net, 60), np.ones(60, dtype=bool))


def test_reset_clears_only_the_valid_chain(nets):
    net = nets["all_ops"]
    core = LogicNetCore(net, layers_per_stage=1)
    L = core.latency
    n = 3 * L
    rng = np.random.default_rng(5)
    x = generate.random_features(rng, net, n)
    reset_at = L + 2
    rec = simulate(core, net, x, np.ones(n, dtype=bool), reset_cycles=(reset_at,))
    scores, classes = reference.evaluate(net, x)
    for t in range(n):
        out_cycle = t + L
        in_flight = t <= reset_at < out_cycle  # accepted at or before the reset, not yet out
        assert rec[out_cycle][0] == int(not in_flight), f"sample {t}"
        if not in_flight:
            assert rec[out_cycle][1] == classes[t] and rec[out_cycle][2] == list(scores[t])


def test_latency_formula():
    # E + ceil(depth / lps) + ceil((1 + ceil(log2 ceil(G / 4))) / plps) + 2 * ceil(log2 K), E = 1 (0 pre-encoded)
    lat = pipeline.latency
    assert lat(depth=3, layers_per_stage=2, group_size=5, classes=3, popcount_levels_per_stage=1) == 1 + 2 + 2 + 4
    assert lat(depth=0, layers_per_stage=1, group_size=1, classes=2, popcount_levels_per_stage=1) == 1 + 0 + 0 + 2
    assert lat(depth=6, layers_per_stage=3, group_size=100, classes=10, popcount_levels_per_stage=1) == 1 + 2 + 6 + 8
    assert lat(depth=6, layers_per_stage=3, group_size=100, classes=10, popcount_levels_per_stage=2) == 1 + 2 + 3 + 8
    assert lat(depth=6, layers_per_stage=4, group_size=4, classes=16, popcount_levels_per_stage=3) == 1 + 2 + 1 + 8
    assert lat(depth=6, layers_per_stage=4, group_size=4, classes=16, popcount_levels_per_stage=3,
               pre_encoded=True) == 2 + 1 + 8


@pytest.mark.parametrize("plps", [1, 2, 3])
def test_head_alone_exhaustive_small_groups(plps):
    """ClassifierHead on random bits for G = 1..9 (every leaf compressor size, odd tree leftovers)
    and larger groups whose adders take excess-encoded operands; full and empty counts included."""
    rng = np.random.default_rng(plps)
    for G in [*range(1, 10), 12, 16, 24, 33, 40, 64, 100]:
        K = int(rng.integers(2, 6))
        head = ClassifierHead(K, G, popcount_levels_per_stage=plps)
        n = 64
        bits = rng.integers(0, 2, size=(n, K * G))
        bits[: 2 ** min(G, 4)] = 0  # include all-zero rows and ties
        bits[-8:] = rng.random(size=(8, K * G)) < 0.95  # near-full counts
        bits[-1] = 1  # every count at its maximum
        expect_scores = bits.reshape(n, K, G).sum(axis=2)
        expect_class = np.argmax(expect_scores, axis=1)
        S = head.score_width
        rec = []

        async def bench(ctx):
            for t in range(n + head.latency + 1):
                ctx.set(head.in_valid, int(t < n))
                if t < n:
                    ctx.set(head.in_bits, int("".join(str(b) for b in bits[t][::-1]), 2))
                sc = ctx.get(head.out_scores)
                rec.append((ctx.get(head.out_valid), ctx.get(head.out_class),
                            [(sc >> (k * S)) & ((1 << S) - 1) for k in range(K)]))
                await ctx.tick()

        sim = Simulator(head)
        sim.add_clock(1e-6)
        sim.add_testbench(bench)
        sim.run()
        L = head.latency
        assert [r[0] for r in rec] == [0] * L + [1] * n + [0]
        for t in range(n):
            assert rec[t + L][2] == list(expect_scores[t]), (G, t)
            assert rec[t + L][1] == expect_class[t], (G, t)


def test_comparators_only_for_used_thresholds(nets):
    net = nets["k10_unused"]
    text, info = core_verilog(net)
    graph, _ = passes.optimize(net)
    comparators = [tuple(c) for c in info["comparator_list"]]
    assert set(comparators) == set(graph.inputs)
    assert set(comparators) <= set(net.encoded_bits())
    assert len(comparators) < net.num_inputs
    assert all(f < net.features - 2 for f, _ in comparators)
    assert info["comparators"] == len(comparators)
    enc = re.search(r"reg \[(\d+):0\] enc\b", text)
    assert int(enc.group(1)) + 1 == len(comparators)


@pytest.mark.parametrize("width", [1, 2, 3, 5])
def test_ge_const_exhaustive(width):
    from amaranth.hdl import Cat, Elaboratable, Signal

    from logicforge.hdl.encoder import ge_const

    thresholds = list(range(0, (1 << width) + 1))

    class Cmp(Elaboratable):
        def __init__(self):
            self.x = Signal(width)
            self.y = Signal(len(thresholds))

        def elaborate(self, platform):
            m = Module()
            m.d.comb += self.y.eq(Cat(*(ge_const(self.x, t) for t in thresholds)))
            return m

    dut = Cmp()

    async def bench(ctx):
        for x in range(1 << width):
            ctx.set(dut.x, x)
            y = ctx.get(dut.y)
            assert [(y >> i) & 1 for i in range(len(thresholds))] == [int(x >= t) for t in thresholds]

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()


def _ports(text):
    decl = {}
    for kind, width, name in re.findall(r"^\s*(input|output)\s+(?:\[(\d+):0\]\s+)?(\w+);", text, re.M):
        decl[name] = (kind, int(width) + 1 if width else 1)
    return decl


def test_verilog_ports_and_info(nets):
    net = nets["k10_unused"]
    text, info = core_verilog(net, layers_per_stage=2)
    header = re.search(r"^module (\w+)\(([^)]*)\);", text, re.M)
    assert header.group(1) == "logicnet_core"
    assert len(re.findall(r"^module ", text, re.M)) == 1, "the core must be one flat module"
    S, K, F, W = net.score_width, net.classes, net.features, net.feature_width
    assert _ports(text) == {
        "clk": ("input", 1), "rst": ("input", 1), "in_valid": ("input", 1),
        "in_data": ("input", F * W), "out_valid": ("output", 1),
        "out_class": ("output", max(1, (K - 1).bit_length())), "out_scores": ("output", K * S),
    }
    assert {p.strip() for p in header.group(2).split(",")} == set(_ports(text))
    graph, _ = passes.optimize(net)
    assert info["popcount_levels_per_stage"] == 1
    popcount, argmax = HEAD_LEVELS["k10_unused"]
    assert info["latency_cycles"] == 1 + -(-graph.depth() // 2) + popcount + 2 * argmax
    assert info["score_width"] == S and info["layers_per_stage"] == 2 and info["in_width"] == F * W
    assert info["gates_before"] == net.num_gates and info["gates_after"] == graph.num_gates
    assert info["passes"] and {"name", "gates_before", "gates_after"} <= set(info["passes"][0])
    json.dumps(info)
    assert "src" not in text


def test_only_valid_chain_has_reset(nets):
    text, _ = core_verilog(nets["all_ops"], layers_per_stage=1)
    # reset-less registers become plain assignments; only the valid pipes are muxed with rst
    assert re.findall(r"if \(rst\)", text)
    resets = re.findall(r"\\?(\$\d+)\s*=\s*[^;]*;\s*\n\s*if \(rst\) begin", text)
    reset_regs = set(re.findall(r"always @\(posedge clk\)\s*\n\s*(\w+) <= \\(\$\d+) ;", text))
    names = {r for r, tmp in reset_regs if tmp in resets}
    assert names and names <= {"valid_pipe", "head_valid"}


def test_bad_inputs_raise_one_line_errors(nets):
    net = nets["g1_k2"]
    bad = Netlist(net.features, net.feature_width, net.thresholds,
                  [Layer(l.op.copy(), l.a.copy(), l.b.copy()) for l in net.layers], net.class_names,
                  net.group_size)
    bad.layers[1].a[0] = 10_000
    with pytest.raises(LogicforgeError) as e:
        LogicNetCore(bad)
    assert "\n" not in str(e.value)
    for lps in (0, -1, 1.5, "2"):
        with pytest.raises(LogicforgeError):
            LogicNetCore(net, layers_per_stage=lps)


def _verilog_cli(argv):
    from logicforge.commands import verilog

    p = argparse.ArgumentParser()
    verilog.configure(p)
    return verilog.run(p.parse_args(argv))


def test_verilog_command_generic(nets, tmp_path):
    path = tmp_path / "small.json"
    nets["g1_k2"].save(path)
    build = tmp_path / "build"
    assert _verilog_cli(["--board", "generic", "--netlist", str(path), "--build-dir", str(build),
                         "--layers-per-stage", "3"]) == 0
    out = build / "small" / "generic"
    info = json.loads((out / "core.json").read_text())
    assert info["layers_per_stage"] == 3 and info["module"] == "logicnet_core"
    assert "module logicnet_core(" in (out / "core.v").read_text()


def test_verilog_command_unknown_board(nets, tmp_path):
    path = tmp_path / "small.json"
    nets["g1_k2"].save(path)
    with pytest.raises(LogicforgeError) as e:
        _verilog_cli(["--board", "no-such-board", "--netlist", str(path), "--build-dir", str(tmp_path)])
    assert "no-such-board" in str(e.value)


def test_popcount_plan_needs_carry_outs_only_from_equal_widths():
    """The head's excess encoding (hdl/head.py) relies on this: wherever a popcount adder's sum is
    one bit wider than its operands, the operands have equal widths."""
    from logicforge.hdl.head import _needs_carry_out, popcount_encodings, popcount_plan

    for G in range(1, 1025):
        plan = popcount_plan(G)
        assert sum(t for t, _ in plan[-1]) == G if plan else G == 1
        for level in range(1, len(plan)):
            for total, kids in plan[level]:
                if len(kids) == 2 and _needs_carry_out(plan, level, kids, total):
                    widths = {plan[level - 1][j][0].bit_length() for j in kids}
                    assert len(widths) == 1, (G, level)
        assert popcount_encodings(plan)[-1:] in ([], [[False]])


# -- the serial head ------------------------------------------------------------------------------

def simulate_spaced(core: LogicNetCore, net: Netlist, x, starts, *, pre_bits=None, rst_at=(), junk=None):
    """Present sample i at cycle ``starts[i]`` (in_valid high only then); return per cycle
    (out_valid, out_class, scores) sampled before the clock edge. The input port keeps the sample
    for ``core.input_hold_cycles`` cycles; after that it keeps it too, or with ``junk`` (a numpy
    Generator) it carries random bits."""
    at = {int(t): i for i, t in enumerate(starts)}
    width = len(core.in_bits) if core.pre_encoded else len(core.in_data)
    since = None

    def drive(ctx, t, rst):
        nonlocal since
        ctx.set(rst, int(t in rst_at))
        i = at.get(t)
        since = 0 if i is not None else (None if since is None else since + 1)
        port = core.in_bits if core.pre_encoded else core.in_data
        if i is not None:
            ctx.set(port, pre_bits[i] if core.pre_encoded else pack_features(net, x[i]))
        elif junk is not None and (since is None or since >= core.input_hold_cycles):
            ctx.set(port, int.from_bytes(junk.bytes(-(-width // 8)), "little") & ((1 << width) - 1))
        ctx.set(core.in_valid, int(i is not None))

    return run_core(core, int(starts[-1]) + core.latency + 3, drive)


def check_serial(core, net, x, rng, *, pre_bits=None, junk=None):
    """Samples ``sample_interval`` apart (some further), every output against the reference."""
    assert core.head == "serial"
    gaps = core.sample_interval + rng.choice([0, 0, 0, 1, 5], size=len(x))
    starts = 2 + np.concatenate([[0], np.cumsum(gaps[:-1])])
    rec = simulate_spaced(core, net, x, starts, pre_bits=pre_bits, rst_at=(0,), junk=junk)
    scores, classes = reference.evaluate(net, x)
    due = {int(t) + core.latency: i for i, t in enumerate(starts)}
    assert [t for t, r in enumerate(rec) if r[0]] == sorted(due)  # one pulse per sample, on time
    for t, i in due.items():
        _, cls, sc = rec[t]
        assert sc == list(scores[i]), f"sample {i}: scores"
        assert cls == classes[i], f"sample {i}: class"


@pytest.mark.parametrize("lps", [1, 2, 3])
@pytest.mark.parametrize("name", sorted(NETS))
def test_serial_core_matches_reference(nets, name, lps):
    net = nets[name]
    core = LogicNetCore(net, layers_per_stage=lps, head="serial")
    G, K = net.group_size, net.classes
    assert core.sample_interval == G + 2 * K + 3
    assert core.latency == 1 + max(-(-core.depth // lps), 1) + G + 2 * K + 2  # then simulated
    check_serial(core, net, generate.random_features(np.random.default_rng(lps), net, 40),
                 np.random.default_rng(lps + 10))


@pytest.mark.parametrize("pre_encoded", [False, True])
def test_serial_registers_hold_the_sample(nets, pre_encoded):
    """The serial core registers each signal once (no delay registers: later stages read the
    registers of earlier ones, which hold the sample), so it reads its input port only for
    ``input_hold_cycles`` cycles: random bits there at any other time change nothing."""
    net = nets["wires"]  # pass-through heavy: many signals skip stages
    for lps in (1, 2):
        core = LogicNetCore(net, layers_per_stage=lps, head="serial", pre_encoded=pre_encoded)
        sch, asap = core.schedule, pipeline.schedule(core.graph, lps)
        assert sch.held and not asap.held
        skipping = sum(int(np.sum(asap.registered(k) & (asap.stage < k))) for k in range(1, asap.stages))
        assert sch.stages >= 2 and skipping > 0, "the net should have signals that skip a stage"
        assert all(not np.any(sch.registered(k) & (sch.stage < k)) for k in range(1, sch.stages + 1))
        # gates only the head reads are computed in the last stage (ALAP), next to the chains
        g = core.graph
        by_gates = {n for j in range(g.num_gates) for n in g.reads(j)}
        head_only = {o >> 1 for o in g.outputs} - by_gates - {passes.CONST}
        assert any(asap.stage[n] < sch.stages for n in head_only if n >= g.first_gate)
        assert all(sch.stage[n] == sch.stages for n in head_only if n >= g.first_gate)
        assert core.input_hold_cycles == (pipeline.serial_load_cycle(depth=core.depth, layers_per_stage=lps,
                                                                     pre_encoded=True) + 1 if pre_encoded else 1)
        rng = np.random.default_rng(20 + lps)
        x = generate.random_features(rng, net, 12)
        bits = [sum(int(row[f] >= t) << i for i, (f, t) in enumerate(core.comparators)) for row in x]
        check_serial(core, net, x, rng, pre_bits=bits if pre_encoded else None, junk=np.random.default_rng(lps))


def test_serial_ties_inverted_and_constant_outputs():
    # constant (FALSE/TRUE) and inverted (NOT) output literals, many exact ties between classes
    rng = np.random.default_rng(9)
    net = generate.random_netlist(rng, features=2, thresholds_per_feature=1, classes=5, group_size=3,
                                  ops=[gates.A, gates.NOT_A, gates.FALSE, gates.TRUE], layer_widths=(15,))
    graph, _ = passes.optimize(net)
    lits = [int(o) for o in graph.outputs]
    assert any(o >> 1 == passes.CONST for o in lits), "netlist should have constant outputs"
    assert any(o >> 1 != passes.CONST and o & 1 for o in lits), "netlist should have inverted outputs"
    x = np.array([[a, b] for a in range(16) for b in range(16)])
    scores, _ = reference.evaluate(net, x)
    assert any((s == s.max()).sum() > 1 for s in scores), "netlist should produce ties"
    for lps in (1, 2):
        check_serial(LogicNetCore(net, layers_per_stage=lps, head="serial"), net, x[::3], rng)


def test_serial_depth0_and_pre_encoded():
    # outputs straight from the comparators: depth 0 (the chains load from the encode register,
    # or from in_bits of a pre-encoded core)
    rng = np.random.default_rng(4)
    net = generate.random_netlist(rng, features=4, thresholds_per_feature=2, classes=3, group_size=2,
                                  ops=[gates.A, gates.NOT_B], layer_widths=(6,))
    x = generate.random_features(rng, net, 30)
    core = LogicNetCore(net, head="serial")
    assert core.depth == 0 and core.latency == 1 + 1 + 2 + 2 * 3 + 2
    check_serial(core, net, x, rng)
    pre = LogicNetCore(net, head="serial", pre_encoded=True)
    assert pre.latency == 0 + 1 + 2 + 2 * 3 + 2
    bits = [sum(int(row[f] >= t) << i for i, (f, t) in enumerate(pre.comparators)) for row in x]
    check_serial(pre, net, x, rng, pre_bits=bits)
    # pre-encoded with gate stages too
    net2 = generate.random_netlist(rng, features=4, thresholds_per_feature=2, classes=3, group_size=2,
                                   layer_widths=(12, 6))
    pre2 = LogicNetCore(net2, head="serial", pre_encoded=True, layers_per_stage=1)
    assert pre2.depth >= 1 and pre2.latency == pre2.gate_stages + 2 + 2 * 3 + 2
    x2 = generate.random_features(rng, net2, 30)
    bits2 = [sum(int(row[f] >= t) << i for i, (f, t) in enumerate(pre2.comparators)) for row in x2]
    check_serial(pre2, net2, x2, rng, pre_bits=bits2)


def test_serial_head_component_exhaustive_small():
    from logicforge.hdl.head import SerialHead

    for K, G in ((2, 1), (3, 2), (2, 3)):
        head = SerialHead(K, G, invert=0b10)
        S = head.score_width
        assert head.latency == pipeline.head_latency(G, K, head="serial") == G + 2 * K + 3
        n_in = K * G
        words = list(range(1 << n_in))
        top = Module()
        top.domains.sync = sync = ClockDomain("sync")
        top.submodules.head = head
        rec = []
        gap = head.interval

        async def bench(ctx):
            ctx.set(sync.rst, 1)
            await ctx.tick()
            ctx.set(sync.rst, 0)
            for w in words:
                for j in range(gap):
                    ctx.set(head.in_valid, int(j == 0))
                    ctx.set(head.in_bits, w)
                    await ctx.tick()
                    if j == 0:
                        assert ctx.get(head.busy)
            for _ in range(gap + 2):
                ctx.set(head.in_valid, 0)
                await ctx.tick()

        async def watch(ctx):
            async for _clk, _rst, v, cls, sc in ctx.tick().sample(head.out_valid, head.out_class, head.out_scores):
                if v:
                    rec.append((cls, [(sc >> (k * S)) & ((1 << S) - 1) for k in range(K)]))

        sim = Simulator(top)
        sim.add_clock(1e-6, domain="sync")
        sim.add_testbench(bench)
        sim.add_process(watch)
        sim.run_until(1e-6 * (2 + len(words) * gap + gap + 4))
        assert len(rec) == len(words)
        for w, (cls, sc) in zip(words, rec):
            bits = w ^ 0b10
            exp = [bin((bits >> (k * G)) & ((1 << G) - 1)).count("1") for k in range(K)]
            assert sc == exp and cls == exp.index(max(exp)), (K, G, w)


def test_serial_latency_formula():
    # by hand: E + max(stages, 1) + G + 2K + 2
    assert pipeline.latency(depth=5, layers_per_stage=2, group_size=80, classes=10, head="serial") == 1 + 3 + 102
    assert pipeline.latency(depth=5, layers_per_stage=2, group_size=80, classes=10, head="serial",
                            pre_encoded=True) == 3 + 102
    assert pipeline.latency(depth=0, layers_per_stage=3, group_size=1, classes=2, head="serial") == 1 + 1 + 7
    assert pipeline.latency(depth=0, layers_per_stage=3, group_size=1, classes=2, head="serial",
                            pre_encoded=True) == 1 + 7
    assert pipeline.serial_interval(80, 10) == pipeline.sample_interval(80, 10, "serial") == 103
    assert pipeline.sample_interval(80, 10, "tree") == 1
    with pytest.raises(LogicforgeError, match="head must be one of"):
        pipeline.check_head("fast")


def test_serial_reset_mid_sample_flushes_it(nets):
    """A reset while the head counts or scans drops that sample (no out_valid); the next sample
    is exact."""
    net = nets["k10_unused"]
    core = LogicNetCore(net, layers_per_stage=2, head="serial")
    x = generate.random_features(np.random.default_rng(3), net, 4)
    I, L = core.sample_interval, core.latency
    starts = [2, 2 + I, 2 + 2 * I, 2 + 3 * I]
    # sample 1 is reset while counting, sample 2 in the middle of its scan (a select cycle or not)
    rst_at = (0, starts[1] + L - 2 * net.classes - 3, starts[2] + L - net.classes)
    rec = simulate_spaced(core, net, x, starts, rst_at=rst_at)
    scores, classes = reference.evaluate(net, x)
    assert [t for t, r in enumerate(rec) if r[0]] == [starts[0] + L, starts[3] + L]
    for i in (0, 3):
        _, cls, sc = rec[starts[i] + L]
        assert sc == list(scores[i]) and cls == classes[i]


def test_serial_pre_encoded_load_from_valid_copies():
    """A pre-encoded core with one gate stage loads its chains in ``in_valid``'s cycle: with
    ``in_valid_copies`` those copies (not ``in_valid``) drive the load."""
    rng = np.random.default_rng(8)
    net = generate.random_netlist(rng, features=4, thresholds_per_feature=2, classes=3, group_size=60,
                                  layer_widths=(240, 180))
    core = LogicNetCore(net, head="serial", pre_encoded=True, in_valid_copies=True, layers_per_stage=3)
    assert core.gate_stages == 1 and core.valid_copies == core.load_copies >= 3
    x = generate.random_features(rng, net, 6)
    bits = [sum(int(row[f] >= t) << i for i, (f, t) in enumerate(core.comparators)) for row in x]
    I, L = core.sample_interval, core.latency
    starts = [2 + i * I for i in range(len(x))]

    def drive(ctx, t, rst):
        ctx.set(rst, int(t == 0))
        i = starts.index(t) if t in starts else None
        if i is not None:
            ctx.set(core.in_bits, bits[i])
        # in_valid itself stays low: only the copies carry the sample
        ctx.set(core.in_valid_copies, (1 << core.valid_copies) - 1 if i is not None else 0)

    rec = run_core(core, starts[-1] + L + 3, drive)
    scores, classes = reference.evaluate(net, x)
    assert [t for t, r in enumerate(rec) if r[0]] == [s + L for s in starts]
    for i, s in enumerate(starts):
        assert rec[s + L][1] == classes[i] and rec[s + L][2] == list(scores[i])


def test_wrap_long_lines_keeps_every_token_and_every_string():
    from logicforge.hdl.verilog import wrap_long_lines

    cat = "  assign x = { " + " , ".join(f"\\$1{i} " for i in range(5000)) + " };"
    attr = '  (* note = "' + ", ".join(["a"] * 400) + '" *) wire y;'
    text = "\n".join(["module m;", cat, attr, "endmodule"])
    out = wrap_long_lines(text, 200)
    assert out.split() == text.split()  # only whitespace moved: the same Verilog
    assert max(len(line) for line in out.splitlines() if "note" not in line) <= 210
    assert attr in out.splitlines()  # a string literal is never broken
    assert wrap_long_lines("short, line", 200) == "short, line"


def test_core_verilog_of_a_wide_level_has_no_line_verilator_refuses():
    # A 6000-gate level is one Amaranth concatenation; Verilator refuses lines of more than 40,000
    # tokens (the 88 % Fashion-MNIST core's 12,000-gate level was 128,546 characters on one line).
    from logicforge.hdl.verilog import MAX_LINE

    two_input = np.nonzero(gates.READS_BOTH)[0]
    net = generate.random_netlist(np.random.default_rng(3), features=64, feature_width=8, thresholds_per_feature=8,
                                  layer_widths=(6000,), classes=2, group_size=3000, ops=two_input)
    text, info = core_verilog(net, layers_per_stage=1, head="serial")
    assert info["gates_after"] > 3000
    assert max(len(line) for line in text.splitlines()) <= MAX_LINE + 100
