"""The netlist passes keep the function bit-exact and remove what they promise to remove."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from logicforge.errors import LogicforgeError
from logicforge.netlist import gates, generate, passes, reference
from logicforge.netlist.format import Layer, Netlist

ALL_PASSES = [fn for _, fn in passes.ROUND] + [passes.drop_unused_inputs]


def reference_bits(net: Netlist, x) -> np.ndarray:
    """(n, K*G) output bits of the reference evaluator."""
    return reference.unpack(reference.layer_outputs(net, x)[-1], len(x)).T


def assert_same_function(net: Netlist, g: passes.Graph, x):
    np.testing.assert_array_equal(passes.evaluate_bits(g, x), reference_bits(net, x))
    s0, c0 = reference.evaluate(net, x)
    s1, c1 = passes.evaluate(g, x)
    np.testing.assert_array_equal(s1, s0)
    np.testing.assert_array_equal(c1, c0)


# netlist families: (name, kwargs for random_netlist)
FAMILIES = {
    "all_ops": dict(layer_widths=(40, 30, 20)),
    "constants": dict(ops=[gates.FALSE, gates.TRUE, gates.AND, gates.OR, gates.XOR], layer_widths=(30, 20)),
    "wire_chains": dict(ops=[gates.A, gates.B, gates.NOT_A, gates.NOT_B], layer_widths=(20, 20, 20, 20)),
    "mostly_wires": dict(ops=[gates.A, gates.NOT_B, gates.NOT_A, gates.XNOR, gates.NAND], layer_widths=(30, 30, 30)),
    # two encoded bits feeding wide layers: many duplicate gates
    "duplicates": dict(features=2, thresholds_per_feature=1, layer_widths=(40, 40)),
    "unused_inputs": dict(features=8, unused_features=3, layer_widths=(12, 10)),
    "group1_two_classes": dict(classes=2, group_size=1, layer_widths=(16, 8)),
}


@pytest.mark.parametrize("seed,family", list(enumerate(sorted(FAMILIES))))
def test_optimize_is_bit_exact(seed, family):
    rng = np.random.default_rng(1000 + seed)  # fixed per family: a failure reproduces
    for _ in range(8):
        net = generate.random_netlist(rng, **FAMILIES[family])
        x = generate.random_features(rng, net, 500)
        g, report = passes.optimize(net)
        assert_same_function(net, g, x)
        assert g.num_gates <= net.num_gates
        assert g.num_inputs <= net.num_inputs
        assert report[0]["gates_before"] == net.num_gates
        assert report[-1]["gates_after"] == g.num_gates
        for r0, r1 in zip(report, report[1:]):
            assert r0["gates_after"] == r1["gates_before"]
            assert r1["gates_after"] <= r1["gates_before"]


@pytest.mark.parametrize("pass_fn", ALL_PASSES, ids=lambda f: f.__name__)
def test_each_pass_alone_is_bit_exact(pass_fn):
    rng = np.random.default_rng(7)
    for kwargs in FAMILIES.values():
        net = generate.random_netlist(rng, **kwargs)
        x = generate.random_features(rng, net, 300)
        g = passes.from_netlist(net)
        assert_same_function(net, g, x)
        assert_same_function(net, pass_fn(g).check(), x)


def test_optimised_graph_is_a_fixed_point_and_fully_simplified():
    rng = np.random.default_rng(3)
    net = generate.random_netlist(rng, layer_widths=(60, 50, 40))
    g, _ = passes.optimize(net)
    for fn in ALL_PASSES:
        assert fn(g).num_gates == g.num_gates
    live = passes.live_nodes(g)
    for j in range(g.num_gates):
        op, a, b = g.op[j], g.a[j], g.b[j]
        assert gates.READS_BOTH[op], "one-input or constant gate survived"
        assert a != b and passes.CONST not in (a, b)
        assert live[g.first_gate + j]
    keys = set()
    for j in range(g.num_gates):
        op, a, b = g.op[j], g.a[j], g.b[j]
        if a > b:
            op, a, b = passes.SWAP[op], b, a
        if gates.TRUTH[op, 0, 0]:
            op = passes.COMPLEMENT[op]
        assert (op, a, b) not in keys, "duplicate survived"
        keys.add((op, a, b))


def test_op_algebra_matches_truth():
    for op in range(gates.NUM_OPS):
        for a in (0, 1):
            for b in (0, 1):
                t = gates.TRUTH[op, a, b]
                assert gates.TRUTH[passes.INVERT_A[op], 1 - a, b] == t
                assert gates.TRUTH[passes.INVERT_B[op], a, 1 - b] == t
                assert gates.TRUTH[passes.SWAP[op], b, a] == t
                assert gates.TRUTH[passes.COMPLEMENT[op], a, b] == 1 - t


def _net(thresholds, layers, classes, group_size):
    return Netlist(len(thresholds), 4, thresholds, [Layer(*l) for l in layers],
                   [f"c{k}" for k in range(classes)], group_size).validate()


def test_not_chain_becomes_an_inverted_wire():
    # in0 -> NOT -> A -> NOT -> output 1; in1 -> A -> B -> NOT -> output 0
    net = _net([[3], [5]], [
        ([gates.NOT_A, gates.A], [0, 1], [1, 0]),
        ([gates.A, gates.B], [0, 0], [1, 1]),
        ([gates.NOT_B, gates.NOT_A], [0, 0], [1, 1]),
    ], classes=2, group_size=1)
    g, report = passes.optimize(net)
    assert g.num_gates == 0
    # output 0 = NOT(layer1 gate 1) = NOT(in1); output 1 = NOT(layer1 gate 0) = NOT(NOT in0) = in0
    assert g.inputs == [(0, 3), (1, 5)]
    assert g.outputs == [2 * 2 + 1, 2 * 1]
    assert [r["name"] for r in report][-1] == "inputs"
    x = np.array([[a, b] for a in range(16) for b in range(16)])
    assert_same_function(net, g, x)


def test_constants_fold_and_inputs_drop():
    # every output is a function of constants only -> no gates and no comparators remain
    net = _net([[1], [2]], [
        ([gates.TRUE, gates.FALSE, gates.AND], [0, 1, 0], [1, 0, 1]),
        ([gates.AND, gates.OR, gates.XNOR, gates.A_AND_NOT_B], [0, 1, 0, 0], [1, 0, 1, 1]),
    ], classes=2, group_size=2)
    g, _ = passes.optimize(net)
    assert g.num_gates == 0 and g.num_inputs == 0
    # AND(1,0)=0, OR(0,1)=1, XNOR(1,0)=0, 1 AND NOT 0 = 1
    assert g.outputs == [0, 1, 0, 1]
    x = np.array([[a, b] for a in range(16) for b in range(16)])
    assert_same_function(net, g, x)


def test_duplicates_merge_up_to_order_and_complement():
    net = _net([[1, 2], [4]], [
        ([gates.AND, gates.AND, gates.NAND, gates.XOR], [0, 1, 0, 2], [1, 0, 1, 0]),
        ([gates.A, gates.B, gates.A, gates.A], [0, 3, 2, 3], [3, 1, 0, 0]),
    ], classes=2, group_size=2)
    g, report = passes.optimize(net)
    assert g.num_gates == 2  # AND(in0, in1) once, XOR(in2, in0) once
    dedup = [r for r in report if r["name"] == "dedup"][0]
    assert dedup["gates_before"] - dedup["gates_after"] == 2
    x = np.array([[a, b] for a in range(16) for b in range(16)])
    assert_same_function(net, g, x)


def test_dead_gates_removed():
    net = _net([[1], [2]], [
        ([gates.AND, gates.OR, gates.XOR], [0, 0, 0], [1, 1, 1]),
        # gate 0 reads only a (layer0 gate 0); layer0 gate 1 feeds nothing live; gate 2 unread by B
        ([gates.A, gates.NOT_A], [0, 2], [1, 1]),
    ], classes=2, group_size=1)
    g = passes.remove_dead(passes.from_netlist(net))
    assert g.num_gates == 4  # layer0 gate 1 (OR) is dead
    assert gates.OR not in g.op[:2]


def test_unoptimised_graph_equals_reference():
    rng = np.random.default_rng(11)
    net = generate.random_netlist(rng, layer_widths=(20, 10))
    x = generate.random_features(rng, net, 200)
    assert_same_function(net, passes.from_netlist(net), x)
    assert_same_function(net, passes.normalize(net), x)


def test_depth_and_levels():
    rng = np.random.default_rng(5)
    net = generate.random_netlist(rng, layer_widths=(20, 20, 20))
    g = passes.from_netlist(net)
    assert g.depth() <= len(net.layers)
    lev = g.levels()
    for j in range(g.num_gates):
        for n in g.reads(j):
            assert lev[n] < lev[g.first_gate + j]
    opt, _ = passes.optimize(net)
    assert opt.depth() <= g.depth()


# -- the command --------------------------------------------------------------------------------

def _run_cli(argv):
    from logicforge.commands import passes as passes_command

    p = argparse.ArgumentParser()
    passes_command.configure(p)
    return passes_command.run(p.parse_args(argv))


def test_cli_prints_table(tmp_path, capsys):
    rng = np.random.default_rng(2)
    net = generate.random_netlist(rng, layer_widths=(30, 20))
    path = tmp_path / "net.json"
    net.save(path)
    assert _run_cli(["--netlist", str(path)]) == 0
    out = capsys.readouterr().out
    _, report = passes.optimize(net)
    for name in ("dead", "constants", "wires", "dedup", "inputs", "total"):
        assert name in out
    total = [l for l in out.splitlines() if "total" in l][0].split()
    assert int(total[1]) == net.num_gates and int(total[2]) == report[-1]["gates_after"]


def test_cli_bad_netlist_is_one_line_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "logicforge-netlist", "version": 1, "inputs": {}}')
    with pytest.raises(LogicforgeError) as e:
        _run_cli(["--netlist", str(bad)])
    assert "\n" not in str(e.value) and "features" in str(e.value)
    with pytest.raises(LogicforgeError):
        _run_cli(["--netlist", str(tmp_path / "missing.json")])
