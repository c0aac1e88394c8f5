"""The bit-packed reference evaluator against an independent, simple per-sample evaluator."""

import numpy as np
import pytest

from logicforge.errors import LogicforgeError
from logicforge.netlist import gates, reference
from logicforge.netlist.generate import random_features, random_netlist


def simple_evaluate(net, x):
    """One sample at a time, one gate at a time, straight from the netlist's definition."""
    scores, classes = [], []
    for row in x:
        bits = [int(row[f] >= t) for f in range(net.features) for t in net.thresholds[f]]
        for layer in net.layers:
            bits = [gates.output(int(o), bits[int(a)], bits[int(b)]) for o, a, b in zip(layer.op, layer.a, layer.b)]
        s = [sum(bits[k * net.group_size:(k + 1) * net.group_size]) for k in range(net.classes)]
        scores.append(s)
        classes.append(next(k for k in range(net.classes) if s[k] == max(s)))
    return np.array(scores), np.array(classes)


def test_truth_tables_follow_the_numbering_rule():
    # bit (3 - (2a + b)) of op is the output; spot-check the named gates
    assert [gates.output(gates.AND, a, b) for a in (0, 1) for b in (0, 1)] == [0, 0, 0, 1]
    assert [gates.output(gates.XOR, a, b) for a in (0, 1) for b in (0, 1)] == [0, 1, 1, 0]
    assert [gates.output(gates.A_AND_NOT_B, a, b) for a in (0, 1) for b in (0, 1)] == [0, 0, 1, 0]
    assert [gates.output(gates.NAND, a, b) for a in (0, 1) for b in (0, 1)] == [1, 1, 1, 0]
    for op in range(16):
        for a in (0, 1):
            for b in (0, 1):
                c = gates.COEFFS[op]
                assert c[0] + c[1] * a + c[2] * b + c[3] * a * b == gates.output(op, a, b)


def test_reads_both_names_the_ten_gates_whose_output_depends_on_each_input():
    both = [gates.NAMES[op] for op in range(16) if gates.READS_BOTH[op]]
    assert both == ["AND", "A_AND_NOT_B", "NOT_A_AND_B", "XOR", "OR", "NOR", "XNOR", "A_OR_NOT_B",
                    "NOT_A_OR_B", "NAND"]


@pytest.mark.parametrize("case", [
    dict(),
    dict(layer_widths=(40, 30, 20), classes=5, group_size=3),
    dict(classes=2, group_size=1, layer_widths=(8,)),          # G = 1, K = 2: many ties
    dict(classes=4, group_size=1, layer_widths=(6,), ops=[0, 15, 3, 5]),  # constants, pass-throughs
    dict(unused_features=3, features=8),
    dict(feature_width=8, thresholds_per_feature=6),
    dict(feature_width=1, thresholds_per_feature=1),
])
@pytest.mark.parametrize("n", [1, 63, 64, 65, 300])
def test_matches_simple_evaluator(case, n):
    rng = np.random.default_rng(n * 31 + len(case))
    net = random_netlist(rng, **case)
    x = random_features(rng, net, n)
    scores, classes = reference.evaluate(net, x)
    s2, c2 = simple_evaluate(net, x)
    np.testing.assert_array_equal(scores, s2)
    np.testing.assert_array_equal(classes, c2)


def test_all_ops_exercised_and_ties_resolve_to_smallest_class():
    rng = np.random.default_rng(7)
    net = random_netlist(rng, classes=3, group_size=1, layer_widths=(64,))
    assert set(np.unique(np.concatenate([l.op for l in net.layers]))) == set(range(16))
    x = random_features(rng, net, 500)
    scores, classes = reference.evaluate(net, x)
    tied = (scores == scores.max(1, keepdims=True)).sum(1) > 1
    assert tied.any()
    np.testing.assert_array_equal(classes, np.argmax(scores == scores.max(1, keepdims=True), axis=1))


def test_input_checks(rng):
    net = random_netlist(rng, features=4, feature_width=3)
    with pytest.raises(LogicforgeError, match="4"):
        reference.evaluate(net, np.zeros((2, 5), dtype=np.int64))
    with pytest.raises(LogicforgeError, match=r"\[0, 7\]"):
        reference.evaluate(net, np.full((2, 4), 8))
    with pytest.raises(LogicforgeError, match="integers"):
        reference.evaluate(net, np.zeros((2, 4), dtype=np.float32))
    with pytest.raises(LogicforgeError, match="2-D"):
        reference.evaluate(net, np.zeros(4, dtype=np.int64))


def test_pack_unpack_round_trip(rng):
    bits = rng.integers(0, 2, size=(5, 130)).astype(np.uint8)
    np.testing.assert_array_equal(reference.unpack(reference.pack(bits), 130), bits)


def test_unused_gate_fraction_follows_what_ops_read():
    from logicforge.netlist import analysis
    from logicforge.netlist.format import Layer, Netlist

    # layer 0: gates 0..3; layer 1 (2 classes x 1): class 0 = A of gate 0 (gate 1 ignored as its B),
    # class 1 = XOR of gates 2 and 2. Gate 3 is read by nobody, gate 1 only by an op that ignores it.
    net = Netlist(2, 4, [[3], [5]], [Layer([gates.AND] * 4, [0, 1, 0, 1], [1, 0, 0, 1]),
                                     Layer([gates.A, gates.XOR], [0, 2], [1, 2])],
                  ["a", "b"], 1).validate()
    assert analysis.unused_gate_fraction(net) == pytest.approx(2 / 6)
