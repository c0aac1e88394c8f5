"""``logicforge verify``: the independent specification, the proof on random netlists, and
mutated cores that must be caught with a counterexample that replays (docs/verification.md)."""

from __future__ import annotations

import copy
import re
import subprocess
import sys

import numpy as np
import pytest

from logicforge.hdl.verilog import core_verilog
from logicforge.netlist import reference
from logicforge.netlist.generate import random_features, random_netlist
from logicforge.sim import formal, spec


def lf(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "logicforge", *args], capture_output=True, text=True,
                          timeout=timeout)


def assert_one_line_error(r, needle):
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, r.stderr
    assert needle in lines[0], lines[0]


def _eval_spec(net, x, workdir):
    """Evaluate logicforge.sim.spec's Verilog with yosys ``eval`` for every row of x."""
    W = net.feature_width
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "spec.v").write_text(spec.spec_verilog(net))
    cmds = ["read_verilog spec.v", f"hierarchy -top {spec.TOP}", "proc", "flatten", "opt_clean"]
    for row in x:
        value = sum(int(v) << (f * W) for f, v in enumerate(row))
        cmds.append(f"eval -set in_data {net.features * W}'d{value} -show out_class -show out_scores")
    (workdir / "eval.ys").write_text("\n".join(cmds) + "\n")
    r = subprocess.run([*formal._yosys_cmd(), "-s", "eval.ys"], cwd=workdir, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-500:]
    found = re.findall(r"Eval result: \\(out_class|out_scores) = \d+'([01]+)\.", r.stdout)
    classes = [int(v, 2) for n, v in found if n == "out_class"]
    scores = [formal.unpack_scores(int(v, 2), net.classes, net.score_width) for n, v in found if n == "out_scores"]
    return np.array(scores), np.array(classes)


def test_spec_matches_reference(tmp_path):
    """The specification is checked against the reference evaluator, with ties (G = 2)."""
    rng = np.random.default_rng(7)
    net = random_netlist(rng, features=5, feature_width=3, layer_widths=(20,), classes=4, group_size=2,
                         unused_features=1)
    x = np.concatenate([random_features(rng, net, 40), np.zeros((1, 5), np.int64), np.full((1, 5), 7)])
    scores, classes = _eval_spec(net, x, tmp_path)
    ref_scores, ref_classes = reference.evaluate(net, x)
    np.testing.assert_array_equal(scores, ref_scores)
    np.testing.assert_array_equal(classes, ref_classes)
    ties = [(s == s.max()).sum() > 1 for s in ref_scores]
    assert any(ties), "the sample must exercise the tie rule"


def test_spec_matches_reference_with_lut_layers(tmp_path):
    """The specification's LUT4 nodes against the reference evaluator (both layer kinds, ties)."""
    rng = np.random.default_rng(17)
    net = random_netlist(rng, features=5, feature_width=3, layer_widths=(20, 16), classes=4, group_size=2,
                         lut_layers=(0, 2))
    x = np.concatenate([random_features(rng, net, 60), np.zeros((1, 5), np.int64), np.full((1, 5), 7)])
    scores, classes = _eval_spec(net, x, tmp_path)
    ref_scores, ref_classes = reference.evaluate(net, x)
    np.testing.assert_array_equal(scores, ref_scores)
    np.testing.assert_array_equal(classes, ref_classes)


@pytest.mark.synth
@pytest.mark.parametrize("lps", [1, 2])
def test_verify_proves_netlists_with_lut_layers(tmp_path, lps):
    """The core of a netlist with LUT4 layers (the passes' table normal form, ``lut_expr``) proven
    equivalent to the specification for all inputs."""
    net = random_netlist(np.random.default_rng(30 + lps), features=5, feature_width=4, layer_widths=(40, 30, 20),
                         classes=3, group_size=4, lut_layers=(0, 1, 3))
    result = formal.prove(net, tmp_path, layers_per_stage=lps)
    assert result["verdict"] == "equivalent", (result.get("reason"), result["steps"])


# -- the proof on random netlists ----------------------------------------------------------------

def _random_cases():
    """20 small netlists: every op, G = 1 with K = 2, ties, unused inputs, layers_per_stage 1-3."""
    cases = []
    shapes = [  # (features, width, thresholds, layer_widths, K, G, unused)
        (4, 3, 2, (12,), 2, 1, 0), (5, 4, 3, (16, 12), 2, 1, 1), (6, 4, 3, (24, 16), 3, 4, 1),
        (3, 2, 3, (10, 8), 2, 2, 0), (6, 5, 2, (20,), 4, 3, 2), (4, 4, 4, (16, 16, 8), 3, 5, 0),
        (5, 3, 2, (12, 12), 5, 2, 1), (2, 8, 5, (14,), 2, 7, 0), (7, 2, 1, (18, 10), 3, 1, 2),
        (4, 6, 3, (16, 12, 12), 2, 4, 1),
    ]
    for i in range(20):
        f, w, t, lw, k, g, unused = shapes[i % len(shapes)]
        cases.append(dict(seed=100 + i, lps=1 + i % 3, features=f, feature_width=w, thresholds_per_feature=t,
                          layer_widths=lw, classes=k, group_size=g, unused_features=unused))
    return cases


@pytest.mark.synth  # 20 yosys proofs, about a minute
def test_verify_proves_random_netlists(tmp_path):
    """verify proves 20 random netlists; together they cover every op, G = 1 with K = 2, ties,
    unused inputs and layers_per_stage 1, 2 and 3."""
    ops, lps_seen, ties, g1k2, unused = set(), set(), False, False, False
    for case in _random_cases():
        case = dict(case)
        seed, lps = case.pop("seed"), case.pop("lps")
        rng = np.random.default_rng(seed)
        net = random_netlist(rng, **case)
        result = formal.prove(net, tmp_path / f"n{seed}", layers_per_stage=lps)
        assert result["verdict"] == "equivalent", (seed, result.get("reason"), result["steps"])
        assert result["steps"]["structure"]["data_path_flops"] in ([result["latency_cycles"]], [])
        for layer in net.layers:
            ops.update(layer.op.tolist())
        lps_seen.add(lps)
        scores, _ = reference.evaluate(net, random_features(rng, net, 200))
        ties = ties or bool(((scores == scores.max(axis=1, keepdims=True)).sum(axis=1) > 1).any())
        g1k2 = g1k2 or (net.group_size == 1 and net.classes == 2)
        unused = unused or any(not t for t in net.thresholds)
    assert ops == set(range(16))
    assert lps_seen == {1, 2, 3}
    assert ties and g1k2 and unused


def test_structure_check_catches_a_wrong_latency(tmp_path):
    """A core whose pipeline depth is not the claimed latency is not declared equivalent."""
    net = random_netlist(np.random.default_rng(3), layer_widths=(12,), classes=2, group_size=3)

    def claims_one_more(n, layers_per_stage=None):
        text, info = core_verilog(n, layers_per_stage=layers_per_stage)
        return text, dict(info, latency_cycles=info["latency_cycles"] + 1)

    result = formal.prove(net, tmp_path, layers_per_stage=2, generate=claims_one_more)
    assert result["verdict"] == "unknown"
    assert "structure" in result["reason"] and "expected exactly" in result["reason"]


def test_structure_check_catches_feedback(tmp_path):
    """A hand-written 'core' with an accumulator (feedback) is rejected by the structure check."""
    net = random_netlist(np.random.default_rng(4), features=2, feature_width=2, thresholds_per_feature=1,
                         layer_widths=(4,), classes=2, group_size=1)
    text = """
module logicnet_core(input clk, input rst, input in_valid, input [3:0] in_data, output reg out_valid,
                     output reg [0:0] out_class, output reg [1:0] out_scores);
  always @(posedge clk) begin
    out_valid <= rst ? 1'b0 : in_valid;
    out_scores <= out_scores ^ in_data[1:0];
    out_class <= in_data[2];
  end
endmodule
"""
    gen = lambda n, layers_per_stage=None: (text, {"latency_cycles": 1, "class_width": 1})
    result = formal.prove(net, tmp_path, generate=gen)
    assert result["verdict"] == "unknown"
    assert "feedback" in result["reason"]


# -- mutations must be caught, and the counterexample must replay -----------------------------------

def _mutate_op(net, rng, x):
    """A copy of ``net`` with one gate's op changed (AND<->OR, XOR<->XNOR, ...) whose reference
    result differs from net's on some row of x."""
    swap = {1: 7, 7: 1, 6: 9, 9: 6, 2: 4, 4: 2, 8: 14, 14: 8, 11: 13, 13: 11}
    s0, c0 = reference.evaluate(net, x)
    for _ in range(500):
        mut = copy.deepcopy(net)
        li = int(rng.integers(len(mut.layers)))
        n = int(rng.integers(len(mut.layers[li])))
        op = int(mut.layers[li].op[n])
        if op not in swap:
            continue
        mut.layers[li].op[n] = swap[op]
        s1, c1 = reference.evaluate(mut, x)
        if (s1 != s0).any() or (c1 != c0).any():
            return mut, (li, n, op, swap[op])
    raise AssertionError("no observable op mutation found")


def _swap_inputs(net, rng, x):
    """A copy of ``net`` in which one gate's inputs a and b are swapped, observably."""
    s0, c0 = reference.evaluate(net, x)
    for _ in range(500):
        mut = copy.deepcopy(net)
        li = int(rng.integers(len(mut.layers)))
        n = int(rng.integers(len(mut.layers[li])))
        layer = mut.layers[li]
        layer.a[n], layer.b[n] = int(layer.b[n]), int(layer.a[n])
        s1, c1 = reference.evaluate(mut, x)
        if (s1 != s0).any() or (c1 != c0).any():
            return mut, (li, n)
    raise AssertionError("no observable input swap found")


@pytest.mark.parametrize("mutation", ["op", "swap"])
def test_mutated_netlist_on_the_hdl_side_is_caught(tmp_path, mutation):
    """The HDL side is generated from a netlist with one gate's op changed (or two inputs swapped):
    verify reports non-equivalence, and its counterexample gives different results in the
    reference evaluator for the two netlists."""
    rng = np.random.default_rng(11 if mutation == "op" else 12)
    net = random_netlist(rng, features=5, feature_width=4, layer_widths=(24, 16), classes=3, group_size=3)
    x = random_features(rng, net, 2000)
    mut, where = (_mutate_op if mutation == "op" else _swap_inputs)(net, rng, x)
    gen = lambda n, layers_per_stage=None: core_verilog(mut, layers_per_stage=layers_per_stage)
    result = formal.prove(net, tmp_path, layers_per_stage=2, generate=gen)
    assert result["verdict"] == "not_equivalent", (where, result)
    cex = result["counterexample"]
    xc = np.array([cex["features"]])
    s_ref, c_ref = reference.evaluate(net, xc)
    s_mut, c_mut = reference.evaluate(mut, xc)
    assert (s_ref[0].tolist(), int(c_ref[0])) != (s_mut[0].tolist(), int(c_mut[0]))
    # the core's outputs in the counterexample are those of the mutated netlist
    assert cex["core_scores"] == s_mut[0].tolist() and cex["core_class"] == int(c_mut[0])
    assert cex["reference_scores"] == s_ref[0].tolist() and cex["reference_class"] == int(c_ref[0])


@pytest.mark.slow
@pytest.mark.verilator
def test_mutated_verilog_counterexample_replays_in_predict_and_verilator(tmp_path):
    """Swap two gate inputs in the netlist the HDL side is generated from and check the written
    core.v with the command line: verify exits 2 with one line, writes counterexample.npy;
    `logicforge predict` on it gives the netlist's answer, and `logicforge sim --core` on it (the
    Verilator simulation of that core.v) reports the mismatch."""
    rng = np.random.default_rng(21)
    net = random_netlist(rng, features=5, feature_width=4, layer_widths=(24, 16), classes=3, group_size=3)
    mut, _ = _swap_inputs(net, rng, random_features(rng, net, 2000))
    net.save(tmp_path / "net.json")
    text, _ = core_verilog(mut, layers_per_stage=1)
    (tmp_path / "mutated_core.v").write_text(text)
    build = tmp_path / "build"
    r = lf("verify", "--netlist", str(tmp_path / "net.json"), "--core", str(tmp_path / "mutated_core.v"),
           "--layers-per-stage", "1", "--build-dir", str(build))
    assert_one_line_error(r, "not equivalent")
    assert "NOT EQUIVALENT" in r.stdout
    cex = build / "net" / "verify" / "counterexample.npy"
    x = np.load(cex, allow_pickle=False)
    assert x.shape == (1, net.features)

    p = lf("predict", "--netlist", str(tmp_path / "net.json"), "--input", str(cex), "--output", str(tmp_path / "p.npz"))
    assert p.returncode == 0, p.stderr
    pred = np.load(tmp_path / "p.npz")
    s_mut, c_mut = reference.evaluate(mut, x)
    assert (pred["scores"][0].tolist(), int(pred["classes"][0])) != (s_mut[0].tolist(), int(c_mut[0]))

    s = lf("sim", "--netlist", str(tmp_path / "net.json"), "--core", str(tmp_path / "mutated_core.v"),
           "--layers-per-stage", "1", "--input", str(cex), "--random", "0", "--build-dir", str(build))
    assert s.returncode == 2 and "Traceback" not in s.stderr, s.stderr[-2000:]
    assert re.search(r"logicforge sim: error: \d+ of \d+ outputs differ from the reference", s.stderr), s.stderr
    # and the unmutated core passes the same replay
    ok = lf("sim", "--netlist", str(tmp_path / "net.json"), "--layers-per-stage", "1", "--input", str(cex),
            "--random", "0", "--build-dir", str(tmp_path / "build_ok"))
    assert ok.returncode == 0, ok.stderr


def test_verify_command_proves_and_writes_report(tmp_path):
    net = random_netlist(np.random.default_rng(5), layer_widths=(16,), classes=3, group_size=2)
    net.save(tmp_path / "n.json")
    r = lf("verify", "--netlist", str(tmp_path / "n.json"), "--build-dir", str(tmp_path / "b"))
    assert r.returncode == 0, r.stderr
    assert "EQUIVALENT" in r.stdout
    import json

    report = json.loads((tmp_path / "b" / "n" / "verify" / "report.json").read_text())
    assert report["verdict"] == "equivalent" and report["proven"]
    assert set(report["steps"]) == {"structure", "datapath", "valid"}
    assert not (tmp_path / "b" / "n" / "verify" / "counterexample.npy").exists()


def test_verify_bad_arguments(tmp_path):
    assert_one_line_error(lf("verify", "--netlist", str(tmp_path / "none.json")), "no such netlist file")
    net = random_netlist(np.random.default_rng(5), layer_widths=(8,), classes=2, group_size=2)
    net.save(tmp_path / "n.json")
    assert_one_line_error(lf("verify", "--netlist", str(tmp_path / "n.json"), "--board", "nope"), "unknown board")
    assert_one_line_error(lf("verify", "--netlist", str(tmp_path / "n.json"), "--core", str(tmp_path / "x.v")),
                          "cannot read")


@pytest.mark.slow
@pytest.mark.verilator
def test_unfinished_proof_says_so_and_falls_back_to_exhaustive_simulation(tmp_path):
    """With a time limit too short for the proof, verify exits 1, claims nothing, and simulates
    all 2^12 inputs of a small netlist in Verilator instead."""
    import json

    net = random_netlist(np.random.default_rng(8), features=3, feature_width=4, layer_widths=(12,), classes=2,
                         group_size=3)
    net.save(tmp_path / "n.json")
    r = lf("verify", "--netlist", str(tmp_path / "n.json"), "--timeout", "0.5", "--build-dir", str(tmp_path / "b"))
    assert r.returncode == 1, r.stderr
    assert "NOT PROVEN" in r.stdout and "not a proof" in r.stdout
    report = json.loads((tmp_path / "b" / "n" / "verify" / "report.json").read_text())
    assert report["verdict"] == "unknown" and report["proven"] is None
    fb = report["fallback"]
    assert fb["passed"] and fb["kind"].startswith("exhaustive") and fb["samples"] >= 2 ** 12


def test_valid_chain_without_reset_is_caught(tmp_path):
    """Remove the synchronous reset of the valid chains from the generated Verilog: the datapath
    still matches, but the sequential step finds that out_valid no longer follows the contract."""
    net = random_netlist(np.random.default_rng(9), layer_widths=(10,), classes=2, group_size=2)

    def no_reset(n, layers_per_stage=None):
        text, info = core_verilog(n, layers_per_stage=layers_per_stage)
        patched, count = re.subn(r"if \(rst\) begin\n[^\n]*\n\s*end\n", "", text)
        assert count >= 1
        return patched, info

    result = formal.prove(net, tmp_path, layers_per_stage=1, generate=no_reset)
    assert result["steps"]["datapath"]["outcome"] == "proven"
    assert result["verdict"] == "not_equivalent"
    assert result["steps"]["valid"]["outcome"] == "counterexample"
    assert "out_valid" in result["reason"]
