"""Bit-exact parity of the generated ``logicnet_core`` in Verilator (cocotb) against the reference.

Three Verilator builds, shared through module-scoped fixtures, cover: all 16 ops in every layer,
constant and pass-through gates, unused features and unused encoded bits, tied class scores, a
constant class, G=1 with K=2, feature widths 1, 4 and 8, and layers_per_stage 1, 2 and 3. The
remaining tests reuse those builds (the build is cached by the hash of core.v) to show that a wrong
expected model, a wrong latency claim and bad command-line input are all reported as failures.
The fast tests at the top check the schedule and the checker in pure numpy.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from logicforge.errors import LogicforgeError
from logicforge.netlist import gates, reference
from logicforge.netlist.generate import random_netlist
from logicforge.sim import stimulus as st
from logicforge.sim.runner import toolchain_missing


_MISSING = toolchain_missing()
needs_verilator = pytest.mark.skipif(_MISSING is not None, reason=str(_MISSING))


# -- the schedule and the checker, without a simulator ----------------------------------------

def _ideal_run(latency: int, n_test=5, n_random=300, seed=0, interval=1):
    """Stimulus arrays and the observations of a perfect core with this latency."""
    rng = np.random.default_rng(seed)
    sched = st.make_schedule(n_test, n_random, latency, rng, interval=interval)
    n = n_test + n_random + sched.extra
    exp_scores = rng.integers(0, 5, size=(n, 3))
    exp_classes = np.argmax(exp_scores, axis=1)
    stim = {"latency": latency, "n_test": n_test, "n_random": n_random, "valid": sched.valid,
            "rst": sched.rst, "sample": sched.sample, "streams": np.array(sched.streams),
            "exp_scores": exp_scores, "exp_classes": exp_classes, "features": rng.integers(0, 16, (n, 2))}
    ev, es, _ = st.expected_outputs(sched.valid, sched.rst, sched.sample, latency)
    obs = {"out_valid": ev.copy(), "out_class": np.where(ev, exp_classes[es], 0),
           "out_scores": np.where(ev[:, None], exp_scores[es], 0)}
    return stim, obs


@pytest.mark.parametrize("latency", [1, 2, 7])
def test_checker_accepts_a_perfect_core(latency):
    stim, obs = _ideal_run(latency)
    r = st.check(stim, obs)
    assert r["ok"], r["message"]
    assert r["samples"] >= 305 and r["mismatches"] == 0 and r["required_missing"] == 0
    assert r["latency_measured"] == latency
    assert r["samples_per_cycle"] == 1.0


@pytest.mark.parametrize("interval", [3, 40, 400])
def test_throughput_of_a_serial_core_is_one_sample_per_interval(interval):
    # the blocks hold fewer samples than an interval has cycles at 400 (the 88 % Fashion-MNIST core:
    # 2000 test images, 2423 cycles apart, had been reported as 1.0 samples per cycle)
    stim, obs = _ideal_run(2, n_test=50, n_random=120, interval=interval)
    r = st.check(stim, obs)
    assert r["ok"], r["message"]
    assert r["samples_per_cycle"] == pytest.approx(1 / interval, rel=0.03)


def test_schedule_has_gaps_resets_and_a_flushed_sample():
    stim, _ = _ideal_run(4)
    ev, es, first = st.expected_outputs(stim["valid"], stim["rst"], stim["sample"], 4)
    offered = set(stim["sample"][stim["valid"].astype(bool)].tolist())
    emitted = set(es[ev.astype(bool)].tolist())
    assert set(range(305)) <= emitted            # every test and random sample comes out once
    assert np.count_nonzero(ev) == len(emitted)
    assert offered - emitted                     # samples offered during or before a reset vanish
    assert stim["rst"][stim["streams"][-1][0]:].any()  # a second reset hits after the streams
    checked = ev[first:]
    assert (checked == 0).any() and (checked == 1).any()


def test_checker_catches_a_wrong_score():
    stim, obs = _ideal_run(3)
    t = int(np.nonzero(obs["out_valid"])[0][40])
    obs["out_scores"][t, 1] += 1
    r = st.check(stim, obs)
    assert not r["ok"] and r["mismatches"] == 1
    assert r["first_mismatch"]["cycle"] == t
    assert "differ from the reference" in r["message"]


def test_checker_catches_out_valid_in_a_gap_and_a_reset_that_does_not_flush():
    stim, obs = _ideal_run(3)
    ev, es, first = st.expected_outputs(stim["valid"], stim["rst"], stim["sample"], 3)
    gap = int(np.nonzero(ev[first:] == 0)[0][-1]) + first
    obs["out_valid"][gap] = 1
    r = st.check(stim, obs)
    assert not r["ok"] and r["valid_errors"] >= 1 and "out_valid wrong" in r["message"]

    stim, obs = _ideal_run(3)
    no_flush = st.expected_outputs(stim["valid"], np.zeros_like(stim["rst"]), stim["sample"], 3)[0]
    obs["out_valid"] = no_flush  # a core that ignores reset shows the flushed samples
    assert not st.check(stim, obs)["ok"]


def test_checker_catches_a_late_core():
    stim, obs = _ideal_run(3)
    late = {k: np.roll(v, 1, axis=0) for k, v in obs.items()}
    r = st.check(stim, late)
    assert not r["ok"] and r["latency_measured"] == 4


def test_pack_rows_round_trip(rng):
    for width in (1, 3, 8, 32):
        x = rng.integers(0, 1 << width, size=(50, 7), dtype=np.int64)
        words = st.pack_rows(x, width)
        assert words[0] == sum(int(v) << (f * width) for f, v in enumerate(x[0]))
        assert np.array_equal(st.unpack_ints(words, 7, width), x)


# -- netlists for the Verilator builds ---------------------------------------------------------

#: Ops that read both inputs: random layers of these keep their depth through the optimiser.
TWO_INPUT_OPS = np.nonzero(gates.READS_BOTH)[0]


def _all_ops_everywhere(net, rng):
    """Every layer gets all 16 ops (constants and pass-throughs included) at random positions;
    a layer narrower than 16 gets distinct ops."""
    for layer in net.layers:
        k = min(len(layer), gates.NUM_OPS)
        pos = rng.choice(len(layer), size=k, replace=False)
        layer.op[pos] = rng.permutation(gates.NUM_OPS)[:k]
    return net


def net_a():
    """64 features (the bundled digits, 4 bits), one feature unused, encoded bit 0 unused, all ops,
    class 1 a copy of class 0 (scores always tie), K=3, G=5. Built with layers_per_stage=1."""
    rng = np.random.default_rng(11)
    net = random_netlist(rng, features=64, feature_width=4, thresholds_per_feature=2,
                         layer_widths=(60, 40, 30), classes=3, group_size=5, unused_features=1,
                         ops=TWO_INPUT_OPS)
    _all_ops_everywhere(net, rng)
    first = net.layers[0]
    first.a[first.a == 0] = 1
    first.b[first.b == 0] = 1
    last, g = net.layers[-1], net.group_size
    for arr in (last.op, last.a, last.b):
        arr[g:2 * g] = arr[:g]
    return net.validate()


def net_b():
    """K=2, G=1 (1-bit scores, frequent ties), 8-bit features, 5 layers. layers_per_stage=2."""
    rng = np.random.default_rng(12)
    net = random_netlist(rng, features=3, feature_width=8, thresholds_per_feature=6,
                         layer_widths=(24, 20, 16, 12), classes=2, group_size=1, ops=TWO_INPUT_OPS)
    _all_ops_everywhere(net, rng)
    return net.validate()


def net_c():
    """1-bit features, K=4, G=3, class 3 constant FALSE (score always 0), pass-throughs in
    class 0, 6 layers. layers_per_stage=3."""
    rng = np.random.default_rng(13)
    net = random_netlist(rng, features=12, feature_width=1, thresholds_per_feature=1,
                         layer_widths=(40, 40, 32, 32, 32), classes=4, group_size=3,
                         ops=TWO_INPUT_OPS)
    last = net.layers.pop()
    _all_ops_everywhere(net, rng)
    net.layers.append(last)
    last.op[-3:] = gates.FALSE
    last.op[:2] = [gates.A, gates.NOT_B]
    return net.validate()


def net_d():
    """LUT4 layers (netlist/lut.py): digits features (4 bits), two LUT4 layers (random and
    degenerate tables, repeated pins) and a gate head, K=10, G=4. layers_per_stage=2."""
    rng = np.random.default_rng(14)
    return random_netlist(rng, features=64, feature_width=4, thresholds_per_feature=2, layer_widths=(120, 80),
                          classes=10, group_size=4, lut_layers=(0, 1))


def digits_4bit() -> np.ndarray:
    from sklearn.datasets import load_digits

    return np.minimum(load_digits().data.astype(np.int64), 15)


CASES = {
    "a_lps1": (net_a, 1, 10000),
    "b_lps2": (net_b, 2, 3000),
    "c_lps3": (net_c, 3, 3000),
    "d_lut_lps2": (net_d, 2, 3000),
}


DIGITS = ("a_lps1", "d_lut_lps2")  # cases also run on the 1797 digits images


@pytest.fixture(scope="module")
def sim_root(tmp_path_factory):
    return tmp_path_factory.mktemp("sim_parity")


@pytest.fixture(scope="module", params=list(CASES))
def parity(request, sim_root):
    """One Verilator build and parity run per case: (name, netlist, report, sim build dir)."""
    from logicforge.sim.parity import run_parity

    name = request.param
    make, lps, n_random = CASES[name]
    net = make()
    x_test = digits_4bit() if name in DIGITS else None
    out = sim_root / "build" / name / "sim"
    report = run_parity(net, x_test, random=n_random, layers_per_stage=lps, build_dir=out, seed=5)
    return name, net, report, out


def observed_match_reference(net, out, report):
    """The parity run really compared the samples: the outputs observed while valid (from the
    first reset on) are exactly the reference's scores and classes of the samples due then.
    Returns those (scores, classes)."""
    with np.load(out / "stimulus.npz") as s, np.load(out / "observed.npz") as o:
        ev, es, first = st.expected_outputs(s["valid"], s["rst"], s["sample"], int(s["latency"]))
        shown = o["out_valid"].astype(bool)
        shown[:first] = False  # before the first reset nothing is checked
        due = ev.astype(bool)
        due[:first] = False
        assert shown.sum() == due.sum() == report["samples"]
        scores, classes = reference.evaluate(net, s["features"][es[due]])
        assert np.array_equal(o["out_scores"][shown], scores)
        assert np.array_equal(o["out_class"][shown], classes)
    return scores, classes


@needs_verilator
@pytest.mark.slow
@pytest.mark.verilator
def test_core_is_bit_exact(parity):
    name, net, report, out = parity
    n_test = 1797 if name in DIGITS else 0
    assert report["passed"]
    assert report["mismatches"] == 0 and report["valid_errors"] == 0
    assert report["test_samples"] == n_test and report["random_samples"] == CASES[name][2]
    assert report["samples"] >= n_test + CASES[name][2]
    assert report["latency_cycles"] == report["latency_expected"]
    assert report["samples_per_cycle"] == 1.0
    assert report["layers_per_stage"] == CASES[name][1]
    assert report["gate_stages"] >= 2  # registers between groups of gate layers were exercised
    assert report["cocotb"] == {"tests": 1, "failures": 0, "messages": []}
    assert json.loads((out / "report.json").read_text()) == report
    # The run really compared the samples: observations hold the reference's scores.
    observed_match_reference(net, out, report)


@needs_verilator
@pytest.mark.slow
@pytest.mark.verilator
def test_cases_exercise_ties_and_constant_classes(parity):
    """The netlists do what their docstrings claim, on the very samples simulated."""
    name, net, report, out = parity
    with np.load(out / "stimulus.npz") as s:
        scores = s["exp_scores"]
        classes = s["exp_classes"]
    top = scores.max(axis=1, keepdims=True)
    ties = (scores == top).sum(axis=1) > 1
    assert ties.any() and (~ties).any()
    assert len(set(classes.tolist())) >= 2
    if name == "a_lps1":
        assert np.array_equal(scores[:, 0], scores[:, 1])
        assert not (classes == 1).any()  # the tie goes to the smaller class
    if name == "c_lps3":
        assert (scores[:, 3] == 0).all()


def _parity_a(sim_root, **kw):
    from logicforge.sim.parity import run_parity

    return run_parity(net_a(), None, random=500, layers_per_stage=1,
                      build_dir=sim_root / "build" / "a_lps1" / "sim", seed=6, **kw)


@pytest.fixture(scope="module")
def a_built(sim_root):
    """The a_lps1 build (made once; the parity fixture's build is reused when it ran first)."""
    report = _parity_a(sim_root)
    assert report["passed"], report["message"]
    return sim_root


@needs_verilator
@pytest.mark.slow
@pytest.mark.verilator
def test_wrong_expected_model_fails_with_the_first_mismatch(a_built):
    """Against a deliberately wrong model (one output gate flipped) the run fails, the cocotb test
    itself fails, and the error names the first mismatching sample. The build is reused."""
    sim_root = a_built
    net = net_a()
    wrong = copy.deepcopy(net)
    wrong.layers[-1].op[-1] ^= 0b1111  # the complementary gate: its bit always differs
    with pytest.raises(LogicforgeError, match=r"differ from the reference; first: random sample \d+ "
                                              r"at cycle \d+, features \[.*\]: expected class \d scores"):
        _parity_a(sim_root, reference=lambda n, x: reference.evaluate(wrong, x))
    report = json.loads((sim_root / "build" / "a_lps1" / "sim" / "report.json").read_text())
    assert report["build_cached"] and not report["passed"]
    assert report["mismatches"] == report["samples"] > 0
    assert report["cocotb"]["failures"] == 1 and "differ from the reference" in report["cocotb"]["messages"][0]
    first = report["first_mismatch"]
    diff = np.array(first["expected_scores"]) - np.array(first["got_scores"])
    assert abs(diff[2]) == 1 and diff[0] == diff[1] == 0  # exactly the flipped gate's class


@needs_verilator
@pytest.mark.slow
@pytest.mark.verilator
def test_wrong_latency_claim_fails(a_built):
    sim_root = a_built
    from logicforge.hdl.verilog import core_verilog

    def lying(net, layers_per_stage=None):
        text, info = core_verilog(net, layers_per_stage=layers_per_stage)
        return text, dict(info, latency_cycles=info["latency_cycles"] + 1)

    with pytest.raises(LogicforgeError, match=r"out_valid wrong .* measured latency (\d+), generator says"):
        _parity_a(sim_root, generate=lying)


@needs_verilator
@pytest.mark.slow
@pytest.mark.verilator
def test_cli_sim_on_a_run_directory(a_built, capsys):
    """``logicforge sim --run DIR`` checks the run's test_set.npz (its first 120 samples with
    ``--images 120``) and writes report.json."""
    sim_root = a_built
    from logicforge.cli import main

    run = sim_root / "runs" / "a_lps1"
    run.mkdir(parents=True, exist_ok=True)
    net_a().save(run / "netlist.json")
    x = digits_4bit()[:300]
    np.savez(run / "test_set.npz", x=x, y=np.zeros(len(x), dtype=np.int64))
    rc = main(["sim", "--run", str(run), "--build-dir", str(sim_root / "build"), "--random", "400",
               "--layers-per-stage", "1", "--images", "120"])
    out = capsys.readouterr().out
    assert rc == 0
    report = json.loads((sim_root / "build" / "a_lps1" / "sim" / "report.json").read_text())
    assert report["build_cached"] and report["test_samples"] == 120 and report["random_samples"] == 400
    assert f"parity: {report['samples']}/{report['samples']} bit-exact" in out


def test_cli_rejects_bad_input(tmp_path, capsys):
    from logicforge.cli import main

    net = net_b()
    net.save(tmp_path / "n.json")
    np.save(tmp_path / "x.npy", np.zeros((4, net.features + 1), dtype=np.int64))
    rc = main(["sim", "--netlist", str(tmp_path / "n.json"), "--input", str(tmp_path / "x.npy"),
               "--build-dir", str(tmp_path / "build")])
    err = capsys.readouterr().err
    assert rc == 2 and "x.npy" in err and "features" in err and len(err.strip().splitlines()) == 1
    rc = main(["sim", "--netlist", str(tmp_path / "n.json"), "--random", "-1"])
    assert rc == 2
    np.save(tmp_path / "big.npy", np.full((2, net.features), 256, dtype=np.int64))
    rc = main(["sim", "--netlist", str(tmp_path / "n.json"), "--input", str(tmp_path / "big.npy")])
    assert rc == 2 and "[0, 255]" in capsys.readouterr().err


# -- the serial head in Verilator ------------------------------------------------------------------

@pytest.fixture(scope="module", params=list(CASES))
def serial_parity(request, sim_root):
    """The CASES' cores with the serial head (samples ``serial_interval`` apart): one Verilator
    build and parity run each."""
    from logicforge.hdl.verilog import core_verilog
    from logicforge.sim.parity import run_parity

    name = request.param
    make, lps, n_random = CASES[name]
    net = make()
    x_test = digits_4bit() if name in DIGITS else None

    def generate(n, layers_per_stage=None):
        return core_verilog(n, layers_per_stage=layers_per_stage, head="serial")

    out = sim_root / "build" / f"{name}_serial" / "sim"
    report = run_parity(net, x_test, random=min(n_random, 3000), layers_per_stage=lps, build_dir=out, seed=6,
                        generate=generate)
    return name, net, report, out


@needs_verilator
@pytest.mark.slow
@pytest.mark.verilator
def test_serial_core_is_bit_exact(serial_parity):
    """Class AND scores of every sample (test images, random vectors, ties, constant classes,
    G = 1 / K = 2) equal the reference; one result per ``G + 2K + 3`` cycles."""
    from logicforge.hdl import pipeline

    name, net, report, out = serial_parity
    assert report["passed"] and report["mismatches"] == 0 and report["valid_errors"] == 0
    assert report["head"] == "serial"
    interval = pipeline.serial_interval(net.group_size, net.classes)
    assert report["sample_interval_cycles"] == interval
    # outputs over the cycles from a block's first to its last: n / ((n - 1) * interval + 1)
    assert report["samples_per_cycle"] == pytest.approx(1 / interval, rel=0.01)
    assert report["latency_cycles"] == report["latency_expected"]
    scores, classes = observed_match_reference(net, out, report)
    if name == "a_lps1":  # class 1 copies class 0: every sample is a tie, the smaller index wins
        assert np.all(scores[:, 0] == scores[:, 1]) and not np.any(classes == 1)
