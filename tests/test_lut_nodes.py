# amaranth: UnusedElaboratable=no
"""LUT4 nodes (``netlist/lut.py``): their meaning, the format, the passes and the core, each against
the definition "bit p0 + 2 p1 + 4 p2 + 8 p3 of the table"."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from logicforge.netlist import gates, generate, lut, passes, reference
from logicforge.netlist.format import Layer, LutLayer, Netlist, NetlistError, load


def _net(layers, thresholds=((3, 8), (5,), (1, 2, 9)), classes=2, group=2) -> Netlist:
    return Netlist(len(thresholds), 4, [list(t) for t in thresholds], layers,
                   [f"c{k}" for k in range(classes)], group).validate()


# -- the node ---------------------------------------------------------------------------------------

def test_output_is_the_table_bit_at_the_pin_number():
    assert lut.output(1 << 13, (1, 0, 1, 1)) == 1  # 1 + 4 + 8 = 13
    assert lut.output(1 << 13, (1, 1, 1, 1)) == 0
    assert lut.output(0xAAAA, (1, 0, 0, 0)) == 1 and lut.output(0xAAAA, (0, 1, 1, 1)) == 0  # pin 0


def test_bitwise_evaluation_matches_output():
    rng = np.random.default_rng(0)
    tables = rng.integers(0, 1 << 16, 40)
    bits = rng.integers(0, 2, (40, 4, 150)).astype(np.uint8)
    words = np.stack([reference.pack(bits[:, i]) for i in range(4)], axis=1)
    got = reference.unpack(lut.apply_bitwise(tables, words), 150)
    want = [[lut.output(tables[n], bits[n, :, s]) for s in range(150)] for n in range(40)]
    assert np.array_equal(got, np.array(want))


@pytest.mark.parametrize("k", [2, 3, 4])
def test_table_algebra_against_the_definition(k):
    rng = np.random.default_rng(k)
    for table in [int(t) for t in rng.integers(0, 1 << (1 << k), 30)]:
        for p in itertools.product((0, 1), repeat=k):
            out = lut.output(table, p)
            for i in range(k):
                q = list(p)
                q[i] ^= 1
                assert lut.output(lut.flip(table, k, i), q) == out
                assert lut.output(lut.restrict(table, k, i, p[i]), q) == out  # pin i no longer matters
                for j in range(k):
                    if j != i:
                        tied = list(p)
                        tied[j] = p[i]
                        assert lut.output(lut.tie(table, k, i, j), p) == lut.output(table, tied)
            assert lut.output(lut.complement(table, k), p) == 1 - out
        ignored = [i for i in range(k) if not lut.depends(table, k, i)]
        keep = [i for i in range(k) if i not in ignored][::-1]  # any order
        sub = lut.select(table, k, keep)
        for p in itertools.product((0, 1), repeat=k):
            assert lut.output(sub, [p[i] for i in keep]) == lut.output(table, p)


# -- the format ---------------------------------------------------------------------------------------

def test_round_trip_and_versions(tmp_path):
    rng = np.random.default_rng(1)
    net = generate.random_netlist(rng, lut_layers=(0,))
    net.save(tmp_path / "n.json")
    d = json.loads((tmp_path / "n.json").read_text())
    assert d["version"] == 2 and set(d["layers"][0]) == {"lut4", "in"}
    back = load(tmp_path / "n.json")
    assert isinstance(back.layers[0], LutLayer) and np.array_equal(back.layers[0].ins, net.layers[0].ins)
    x = generate.random_features(rng, net, 100)
    assert np.array_equal(reference.evaluate(back, x)[0], reference.evaluate(net, x)[0])
    gates_only = generate.random_netlist(rng)
    assert gates_only.to_dict()["version"] == 1  # gate-only files stay version 1


@pytest.mark.parametrize("edit,message", [
    (lambda d: d.update(version=1), r"layers\[0\]: a LUT4 layer \(lut4, in\) needs version 2"),
    (lambda d: d["layers"][0]["lut4"].__setitem__(0, 1 << 16), r"layers\[0\]\.lut4\[0\]: 65536 out of range"),
    (lambda d: d["layers"][0]["in"].__setitem__(1, [0, 1, 2]), r"layers\[0\]\.in\[1\]: must be a list of 4"),
    (lambda d: d["layers"][0]["in"][2].__setitem__(3, 6), r"layers\[0\]\.in\[2\]\[3\]: 6 out of range \[0, 5\]"),
    (lambda d: d["layers"][0]["lut4"].pop(), r"layers\[0\]: lut4 and in differ in length"),
    (lambda d: d["layers"][0].pop("in"), r"layers\[0\]\.in: missing"),
    (lambda d: d.update(version=3), r"version: unsupported version 3"),
])
def test_bad_lut_layers_are_one_line_errors(edit, message):
    net = _net([LutLayer(np.arange(4) * 999, np.arange(16).reshape(4, 4) % 6), Layer([1] * 4, [0, 1, 2, 3], [3, 2, 1, 0])])
    d = net.to_dict()
    edit(d)
    with pytest.raises(NetlistError, match=message) as e:
        Netlist.from_dict(d, "n.json")
    assert "\n" not in str(e.value)


# -- the passes -------------------------------------------------------------------------------------

KINDS = [(0, 1), (0,), (1, 2), (0, 1, 2), (2,)]


@pytest.mark.parametrize("seed", range(12))
def test_passes_keep_the_function(seed):
    rng = np.random.default_rng(seed)
    net = generate.random_netlist(rng, layer_widths=(30, 20), lut_layers=KINDS[seed % len(KINDS)],
                                  unused_features=seed % 2)
    x = np.concatenate([generate.random_features(rng, net, 300), np.zeros((1, net.features), np.int64)])
    want = reference.evaluate(net, x)[0]
    g, report = passes.optimize(net)
    assert np.array_equal(passes.evaluate(g, x)[0], want)
    assert np.array_equal(passes.evaluate(passes.from_netlist(net), x)[0], want)
    assert np.array_equal(passes.evaluate(passes.normalize(net), x)[0], want)
    for j, (table, ins) in g.luts.items():  # normal form: 3 or 4 distinct ascending pins, all read
        assert 3 <= len(ins) <= 4 and list(ins) == sorted(set(ins)) and passes.CONST not in ins
        assert all(lut.depends(table, len(ins), i) for i in range(len(ins)))
    assert report[-1]["gates_after"] == g.num_gates


def test_wire_nodes_and_small_tables_become_wires_and_gates():
    # layer 0: a real 4-input node, a wire of input 2, a 2-pin AND (pins 1 and 3 ignored), an inverted
    # wire with repeated pins; layer 1 (the outputs) reads them through wires of pin 0
    a_and_b = sum(1 << m for m in range(16) if (m & 1) and (m & 4))  # pin 0 and pin 2
    l0 = LutLayer([0x6996, 0xAAAA, a_and_b, 0x5555], [[0, 1, 2, 3], [2, 2, 2, 2], [4, 0, 5, 0], [1, 1, 1, 1]])
    l1 = LutLayer([0xAAAA] * 4, [[i] * 4 for i in range(4)])
    net = _net([l0, l1])
    g, _ = passes.optimize(net)
    assert g.num_luts == 1 and g.num_gates == 2  # the parity node and the AND gate
    assert [o & 1 for o in g.outputs] == [0, 0, 0, 1]  # the inverted wire stays an inverted literal
    x = np.array(list(itertools.product(range(0, 16, 3), repeat=3)))
    assert np.array_equal(passes.evaluate(g, x)[0], reference.evaluate(net, x)[0])


def test_duplicate_tables_merge_up_to_pin_order_and_complement():
    t = 0x1E5A
    order = [1, 3, 0, 2]  # node 1's pin q reads input order[q]: the same function of the same inputs
    t_perm = sum(lut.output(t, [(m >> order.index(i)) & 1 for i in range(4)]) << m for m in range(16))
    l0 = LutLayer([t, t_perm, lut.complement(t, 4), t], [[0, 1, 2, 3], [1, 3, 0, 2], [0, 1, 2, 3], [0, 1, 2, 4]])
    net = _net([l0, Layer([3, 3, 3, 3], [0, 1, 2, 3], [0, 1, 2, 3])])
    g, _ = passes.optimize(net)
    assert g.num_luts == 2  # t on (0, 1, 2, 3), and t on (0, 1, 2, 4)
    x = np.array(list(itertools.product(range(0, 16, 3), repeat=3)))
    assert np.array_equal(passes.evaluate(g, x)[0], reference.evaluate(net, x)[0])


# -- the core (Amaranth's simulator) ----------------------------------------------------------------

amaranth = pytest.importorskip("amaranth", reason="amaranth is needed to build the core")


@pytest.mark.parametrize("head,lps,lut_layers", [("tree", 1, (0, 1)), ("tree", 2, (0, 1)), ("serial", 2, (0, 1)),
                                                 ("serial", 1, (0, 1)), ("serial", 1, (0, 1, 3)),
                                                 ("serial", 2, (0, 1, 3))])
def test_core_with_lut_layers_matches_the_reference(head, lps, lut_layers):
    """(0, 1, 3): the class outputs are table nodes too (computed a stage before the chains)."""
    from test_hdl_core import check_stream, run_core, pack_features  # noqa: F401 (the streaming checker)

    from logicforge.hdl.core import LogicNetCore

    rng = np.random.default_rng(7 + lps)
    net = generate.random_netlist(rng, layer_widths=(40, 30, 20), lut_layers=lut_layers, classes=3, group_size=5)
    core = LogicNetCore(net, layers_per_stage=lps, head=head, with_scores=True)
    assert core.graph.num_luts > 10
    x = np.concatenate([generate.random_features(rng, net, 40), np.zeros((1, net.features), np.int64)])
    if head == "tree":
        check_stream(core, net, x, np.ones(len(x), dtype=bool))
        return
    scores, classes = reference.evaluate(net, x)
    gap = core.sample_interval
    starts = [i * gap for i in range(len(x))]

    def drive(ctx, t, rst):
        ctx.set(rst, 0)
        i = t // gap
        on = t % gap == 0 and i < len(x)
        ctx.set(core.in_valid, int(on))
        if on:
            ctx.set(core.in_data, pack_features(net, x[i]))

    rec = run_core(core, starts[-1] + core.latency + 2, drive)
    got = [(r[1], r[2]) for r in rec if r[0]]
    assert len(got) == len(x)
    for i, (cls, sc) in enumerate(got):
        assert sc == list(scores[i]) and cls == classes[i], f"sample {i}"


@pytest.mark.parametrize("lps", [1, 2])
def test_table_outputs_leave_the_last_stage_to_the_chain_multiplexers(lps):
    """Held registers (serial head): a class output that is a table node has no LUT pin to spare for
    its chain's multiplexer, so it is computed in the stage before the last (at that stage's last
    level) wherever its operands allow; a gate output stays in the last stage, sharing the LUT."""
    from logicforge.hdl import pipeline

    rng = np.random.default_rng(7)  # mostly wires between the tables, so some outputs could go earlier
    net = generate.random_netlist(rng, layer_widths=(30, 20, 20, 16), lut_layers=(0, 4), classes=3, group_size=6,
                                  ops=[gates.NAMES.index(n) for n in ("A", "B", "AND", "NOR")])
    g, _ = passes.optimize(net)
    sch = pipeline.schedule(g, lps, held=True)
    asap = g.levels()
    before_last = (sch.stages - 1) * lps
    read = {r for j in range(g.num_gates) for r in g.reads(j)}
    outs = {o >> 1 for o in g.outputs if (o >> 1) >= g.first_gate} - read  # only the head reads them
    moved = kept = 0
    for n in outs:
        if g.op[n - g.first_gate] == passes.LUT and 0 < asap[n] <= before_last:
            assert sch.level[n] == before_last and sch.stage[n] == sch.stages - 1
            moved += 1
        else:
            assert sch.level[n] == sch.depth and sch.stage[n] == sch.stages
            kept += 1
    assert moved >= 2 and kept >= 2
    for j in range(g.num_gates):  # no operand comes later than its reader
        assert all(sch.level[r] < sch.level[g.first_gate + j] for r in g.reads(j))


def test_a_netlist_with_lut_nodes_defaults_to_one_level_per_stage():
    from logicforge.boards.estimate import estimate
    from logicforge.hdl import pipeline
    from logicforge.hdl.core import LogicNetCore

    rng = np.random.default_rng(3)
    tables = generate.random_netlist(rng, layer_widths=(20, 20), lut_layers=(0,))
    gates_only = generate.random_netlist(rng, layer_widths=(20, 20))
    for head in ("tree", "serial"):
        assert LogicNetCore(tables, head=head).layers_per_stage == pipeline.DEFAULT_TABLE_LAYERS_PER_STAGE == 1
        assert LogicNetCore(tables, head=head, layers_per_stage=2).layers_per_stage == 2
    assert LogicNetCore(gates_only, head="serial").layers_per_stage == pipeline.DEFAULT_SERIAL_LAYERS_PER_STAGE
    assert LogicNetCore(gates_only).layers_per_stage == pipeline.DEFAULT_LAYERS_PER_STAGE
    # the cost model builds the same schedule
    assert estimate(tables, board="icebreaker") == estimate(tables, board="icebreaker", layers_per_stage=1)
