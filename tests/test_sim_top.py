"""``logicforge sim --top``: the whole board top, driven over its UART, against the reference class.

The fast tests check the reply checker (``sim.uart_parity.check_replies``) on made-up observations
and the command's one-line errors. The Verilator tests train a small digits model (real images),
send its test set through the generated ``uart_top`` with cocotbext-uart, back to back and one
request at a time, and show that a wrong expectation and a wrong netlist in the top are caught.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from logicforge.errors import LogicforgeError
from logicforge.netlist import format as nf
from logicforge.netlist import reference
from logicforge.sim.runner import toolchain_missing
from logicforge.sim.uart_parity import FRAME_BITS, check_replies


_MISSING = toolchain_missing("cocotbext.uart")
needs_verilator = pytest.mark.skipif(_MISSING is not None, reason=str(_MISSING))


# -- the reply checker, without a simulator -----------------------------------------------------

def _ideal(n=20, nbytes=6, div=4, latency=12, led_bits=2, seed=0):
    """Stimulus and the observations of a correct top that streams back to back."""
    rng = np.random.default_rng(seed)
    expected = rng.integers(0, 7, size=n)
    stim = {"expected": expected, "divisor": div, "latency": latency, "led_bits": led_bits,
            "stream": True, "n_test": n - 5, "n_random": 5, "data": np.zeros((n, nbytes), np.uint8)}
    t0, period = 100, nbytes * FRAME_BITS * div
    end = t0 + period * np.arange(1, n + 1)
    obs = {"reply_byte": expected.copy(), "reply_leds": expected & ((1 << led_bits) - 1),
           "reply_activity": np.arange(1, n + 1) % 2, "reply_error": np.zeros(n, np.int64),
           "reply_cycle": end + latency + 10 * div, "sample_end": end, "activity0": 0,
           "t_start": t0, "t_end": int(end[-1]) + 500, "send_seconds": 1.0}
    return stim, obs


def _drop(obs, r):
    """The observations without reply ``r``."""
    keys = ("reply_byte", "reply_leds", "reply_activity", "reply_error", "reply_cycle")
    return {k: (np.delete(v, r) if k in keys else v) for k, v in obs.items()}


def test_checker_accepts_a_correct_top():
    stim, obs = _ideal()
    v = check_replies(stim, obs)
    assert v["ok"], v["message"]
    assert v["matches"] == v["samples"] == v["replies"] == 20
    assert v["reply_delay_cycles"] == [12 + 40, 12 + 40]
    assert v["cycles_per_sample"] == 6 * 10 * 4


def test_checker_names_the_first_wrong_reply():
    stim, obs = _ideal()
    obs["reply_byte"][[7, 16]] += 1
    obs["reply_leds"] = obs["reply_byte"] & 3
    v = check_replies(stim, obs)
    assert not v["ok"] and v["mismatches"] == 2 and v["matches"] == 18
    assert v["first_mismatch"]["sample"] == 7 and v["first_mismatch"]["kind"] == "test-set sample 7"
    assert v["message"].startswith("2 of 20 replies differ from the reference class; first: test-set "
                                   f"sample 7: expected class {stim['expected'][7]}, got {stim['expected'][7] + 1}")


def test_checker_pairs_by_time_so_a_lost_reply_is_not_a_shift():
    """Without reply 5 the later replies still belong to their own samples: one missing, no mismatch."""
    stim, obs = _ideal()
    obs = _drop(obs, 5)
    obs["reply_activity"] = np.arange(1, 20) % 2
    v = check_replies(stim, obs)
    assert not v["ok"] and v["mismatches"] == 0 and v["missing"] == 1 and v["extra"] == 0
    assert "1 samples without a reply (first: test-set sample 5)" in v["message"]


def test_checker_catches_a_reply_too_many_a_late_reply_and_bad_leds():
    stim, obs = _ideal()
    twice = {k: (np.insert(v, 3, v[3]) if k.startswith("reply_") else v) for k, v in obs.items()}
    twice["reply_cycle"][4] += 2 * 4 * 10  # the same sample answered again, 2 bytes later
    twice["reply_activity"] = np.arange(1, 22) % 2
    v = check_replies(stim, twice)
    assert not v["ok"] and v["extra"] == 1 and v["missing"] == 0 and v["mismatches"] == 0

    stim, obs = _ideal(nbytes=200)
    obs["reply_cycle"][-1] += 41 * 4  # after the latency plus 40 bit times: too late
    v = check_replies(stim, obs)
    assert not v["ok"] and v["missing"] == 1 and v["extra"] == 1

    stim, obs = _ideal()
    obs["reply_leds"][2] ^= 1
    v = check_replies(stim, obs)
    assert not v["ok"] and v["led_errors"] == 1 and "class LEDs" in v["message"]

    stim, obs = _ideal()
    obs["reply_activity"][4:] ^= 1  # reply 4 did not toggle it
    v = check_replies(stim, obs)
    assert not v["ok"] and v["activity_errors"] == 1


# -- the command's one-line errors -------------------------------------------------------------

@pytest.mark.parametrize("argv, needle", [
    (["--top", "--images", "0"], "--images must be a count of at least 1 or 'all', got '0'"),
    (["--top", "--images", "many"], "--images must be a count"),
    (["--top", "--divisor", "3"], "--divisor must be at least 4, got 3"),
    (["--divisor", "8"], "--divisor applies to --top only"),
    (["--wait-replies"], "--wait-replies applies to --top only"),
    (["--encoder", "shift"], "--encoder applies to --top only"),
    (["--top", "--core", "x.v"], "--core replaces the core of the core check"),
])
def test_cli_rejects_bad_top_options(tmp_path, capsys, argv, needle):
    from logicforge.cli import main
    from logicforge.netlist.generate import random_netlist

    net = random_netlist(np.random.default_rng(0), features=3, feature_width=4, thresholds_per_feature=2,
                         layer_widths=(8, 6), classes=2, group_size=3)
    net.save(tmp_path / "n.json")
    rc = main(["sim", "--netlist", str(tmp_path / "n.json"), "--build-dir", str(tmp_path / "b"), *argv])
    err = capsys.readouterr().err
    assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "b").exists()  # refused before anything was built


# -- the top in Verilator ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """A small model trained on the bundled digits (a real run directory with its test set)."""
    from logicforge.train import config
    from logicforge.train.trainer import train

    root = tmp_path_factory.mktemp("sim_top")
    cfg = config.resolve({"layers": 2, "width": 200, "epochs": 4, "batch_size": 64, "lr": 0.1,
                          "tau": 3.0, "mode": "softmax", "encoding": {"thresholds": 3},
                          "backend": "torch", "seed": 3}, "test") | {"name": "small"}
    train(cfg, root / "runs" / "small", progress=False)
    return root


def _top_generator(divisor=4, netlist=None):
    from logicforge.boards.top import top_verilog

    def generate(net):
        return top_verilog(netlist or net, clk_hz=divisor * 1e6, baud=1_000_000)

    return generate


def _run(root, net, x, build="sim_top", **kw):
    from logicforge.boards.top import encode_sample
    from logicforge.sim.uart_parity import run_top_parity

    kw.setdefault("generate", _top_generator())
    return run_top_parity(net, x, encode=encode_sample, build_dir=root / "build" / "small" / build, **kw)


@needs_verilator
@pytest.mark.slow
@pytest.mark.verilator
def test_cli_top_gives_the_reference_class_for_every_test_image(digits_run, capsys):
    """``logicforge sim --top --images all``: every test image back to back over the UART; every
    reply is the reference class, read back from observed.npz and recomputed here."""
    from logicforge.cli import main

    root = digits_run
    run = root / "runs" / "small"
    rc = main(["sim", "--top", "--run", str(run), "--build-dir", str(root / "build"), "--images", "all",
               "--random", "20"])
    out = capsys.readouterr().out
    assert rc == 0
    net = nf.load(run / "netlist.json")
    x = np.load(run / "test_set.npz")["x"]
    out_dir = root / "build" / "small" / "sim_top"
    report = json.loads((out_dir / "report.json").read_text())
    n = len(x) + 20
    assert report["passed"] and report["mode"] == "stream" and report["divisor"] == 4
    assert report["encoder"] == "stream"  # the default
    assert report["samples"] == report["replies"] == report["matches"] == n and report["test_samples"] == len(x)
    assert report["bytes_per_sample"] == net.features
    assert report["cycles_per_sample"] == report["wire_cycles_per_sample"] == net.features * 10 * 4
    assert f"top: {n}/{n} replies equal the reference class" in out
    with np.load(out_dir / "stimulus.npz") as s, np.load(out_dir / "observed.npz") as o:
        assert np.array_equal(s["data"][:len(x)], x.astype(np.uint8))  # the test images, byte for byte
        _, classes = reference.evaluate(net, x)
        assert np.array_equal(o["reply_byte"][:len(x)], classes)
        assert len(set(classes.tolist())) >= 5  # a trained model: the replies are not one constant
        assert np.array_equal(o["reply_leds"], o["reply_byte"] & 31)


@needs_verilator
@pytest.mark.slow
@pytest.mark.verilator
def test_cli_top_with_the_shift_encoder(digits_run, capsys):
    """``sim --top --encoder shift``: the top with the shift-chain encoder gives the reference class
    for every test image and random vectors, back to back at the smallest divisor."""
    from logicforge.cli import main

    root = digits_run
    run = root / "runs" / "small"
    rc = main(["sim", "--top", "--encoder", "shift", "--run", str(run), "--build-dir", str(root / "build_shift"),
               "--images", "all", "--random", "200"])
    out = capsys.readouterr().out
    assert rc == 0
    x = np.load(run / "test_set.npz")["x"]
    report = json.loads((root / "build_shift" / "small" / "sim_top" / "report.json").read_text())
    n = len(x) + 200
    assert report["passed"] and report["samples"] == report["matches"] == n and report["divisor"] == 4
    assert report["encoder"] == "shift"
    assert f"top: {n}/{n} replies equal the reference class" in out


@needs_verilator
@pytest.mark.slow
@pytest.mark.verilator
def test_one_request_at_a_time(digits_run):
    root = digits_run
    net = nf.load(root / "runs" / "small" / "netlist.json")
    x = np.load(root / "runs" / "small" / "test_set.npz")["x"][:12]
    report = _run(root, net, x, stream=False)
    assert report["passed"] and report["mode"] == "request" and report["build_cached"]
    assert report["matches"] == 12
    # each sample waited for its reply: more cycles per sample than the wire needs
    assert report["cycles_per_sample"] > report["wire_cycles_per_sample"]


@needs_verilator
@pytest.mark.slow
@pytest.mark.verilator
def test_wrong_expectation_is_caught(digits_run):
    """Against a deliberately wrong model (the output gates of class 1 complemented) the run fails with
    the first differing image, the cocotb test fails too, and that image is saved for replay."""
    root = digits_run
    net = nf.load(root / "runs" / "small" / "netlist.json")
    x = np.load(root / "runs" / "small" / "test_set.npz")["x"][:60]
    wrong = copy.deepcopy(net)
    wrong.layers[-1].op[net.group_size:2 * net.group_size] ^= 0b1111
    _, right_classes = reference.evaluate(net, x)
    _, wrong_classes = reference.evaluate(wrong, x)
    first = int(np.nonzero(right_classes != wrong_classes)[0][0])
    with pytest.raises(LogicforgeError, match=rf"differ from the reference class; first: test-set sample "
                                              rf"{first}: expected class {wrong_classes[first]}, got "
                                              rf"{right_classes[first]} \(report: "):
        _run(root, net, x, reference=lambda n, xs: reference.evaluate(wrong, xs))
    out_dir = root / "build" / "small" / "sim_top"
    report = json.loads((out_dir / "report.json").read_text())
    assert not report["passed"] and report["build_cached"]
    assert report["mismatches"] == int(np.count_nonzero(right_classes != wrong_classes))
    assert report["cocotb"]["failures"] == 1
    assert np.array_equal(np.load(out_dir / "first_mismatch.npy"), x[first:first + 1])


@needs_verilator
@pytest.mark.slow
@pytest.mark.verilator
def test_wrong_netlist_in_the_top_is_caught(digits_run, tmp_path):
    """A top built from another netlist (classes 0 and 1 swapped) fails against the run's netlist."""
    root = digits_run
    net = nf.load(root / "runs" / "small" / "netlist.json")
    x = np.load(root / "runs" / "small" / "test_set.npz")["x"][:40]
    swapped = copy.deepcopy(net)
    g, last = net.group_size, swapped.layers[-1]
    for arr in (last.op, last.a, last.b):
        arr[:2 * g] = np.concatenate([arr[g:2 * g], arr[:g]])
    _, classes = reference.evaluate(net, x)
    _, swapped_classes = reference.evaluate(swapped, x)
    first = int(np.nonzero(classes != swapped_classes)[0][0])  # the swap changes some replies
    with pytest.raises(LogicforgeError, match=rf"replies differ from the reference class; first: test-set "
                                              rf"sample {first}: expected class {classes[first]}, got "
                                              rf"{swapped_classes[first]} "):
        _run(root, net, x, build="sim_top_swapped", generate=_top_generator(netlist=swapped))
