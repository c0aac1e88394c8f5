"""The command line: bad input ends in one line on stderr and a non-zero exit, never a traceback."""

import importlib
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from logicforge import cli
from logicforge.netlist import reference
from logicforge.netlist.generate import random_features, random_netlist


def lf(*args, env=None, cwd=None):
    e = dict(os.environ, LOGICFORGE_OFFLINE="1", **(env or {}))
    return subprocess.run([sys.executable, "-m", "logicforge", *args], capture_output=True, text=True,
                          env=e, cwd=cwd, timeout=300)


def assert_one_line_error(r, needle):
    assert r.returncode == cli.EXIT_ERROR
    assert "Traceback" not in r.stderr
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, r.stderr
    assert needle in lines[0], lines[0]


@pytest.fixture
def netlist_file(tmp_path, rng):
    net = random_netlist(rng, features=5)
    path = tmp_path / "net.json"
    net.save(path)
    return net, path


def test_help_lists_exactly_the_registered_commands():
    r = lf("--help")
    assert r.returncode == 0
    section = r.stdout.split("positional arguments:")[1].split("options:")[0]
    listed = [m.group(1) for m in re.finditer(r"^    (\S+)", section, re.M)]  # names sit 4 columns in
    assert listed == [name for name in cli.COMMANDS if name not in cli.HIDDEN]


def test_every_command_is_a_module_in_the_commands_room():
    for name, (module, help_text) in cli.COMMANDS.items():
        assert module == "logicforge.commands." + name.replace("-", "_"), name
        mod = importlib.import_module(module)
        assert callable(mod.configure) and callable(mod.run), module
        assert help_text and "\n" not in help_text


@pytest.mark.parametrize("argv,needle", [
    (["synth", "--placement", "fast"], "argument --placement: invalid choice: 'fast'"),
    (["synth", "--head", "wide"], "argument --head: invalid choice: 'wide'"),
    (["synth", "--encoder", "wide"], "argument --encoder: invalid choice: 'wide'"),
    (["synth", "--layers-per-stage", "two"], "argument --layers-per-stage: invalid int value: 'two'"),
    (["frob"], "argument COMMAND: invalid choice: 'frob'"),
    ([], "the following arguments are required: COMMAND"),
])
def test_argument_errors_are_one_line(argv, needle):
    """argparse's own errors (a bad choice or type, a missing command) are one line too, without
    the usage that argparse prints before them."""
    r = lf(*argv)
    assert_one_line_error(r, needle)
    assert "--help)" in r.stderr and "usage:" not in r.stderr


@pytest.mark.parametrize("name", sorted(cli.HIDDEN))
def test_hidden_developer_commands_run(name):
    r = lf(name, "--help")
    assert r.returncode == 0 and r.stdout.startswith(f"usage: logicforge {name} ")


@pytest.mark.parametrize("argv,needle", [
    (["measure", "--lps", "0", "--no-pnr"], "--lps must be at least 1, got 0"),
    (["triton-check", "--batch", "0"], "--batch must be at least 1, got 0"),
])
def test_hidden_commands_reject_bad_numbers_with_exit_2(argv, needle):
    r = lf(*argv)
    assert r.returncode == cli.EXIT_ERROR
    assert_one_line_error(r, needle)


def test_predict_writes_reference_classes_and_scores(tmp_path, netlist_file, rng):
    net, path = netlist_file
    x = random_features(rng, net, 100)
    np.save(tmp_path / "x.npy", x)
    r = lf("predict", "--netlist", str(path), "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "p.npz"))
    assert r.returncode == 0, r.stderr
    out = np.load(tmp_path / "p.npz")
    scores, classes = reference.evaluate(net, x)
    np.testing.assert_array_equal(out["classes"], classes)
    np.testing.assert_array_equal(out["scores"], scores)


def test_predict_wrong_feature_count(tmp_path, netlist_file):
    _, path = netlist_file
    np.save(tmp_path / "x.npy", np.zeros((3, 7), dtype=np.int64))
    r = lf("predict", "--netlist", str(path), "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "p.npz"))
    assert_one_line_error(r, "input has 7 features per sample, the netlist expects 5")
    assert not (tmp_path / "p.npz").exists()


def test_predict_corrupted_netlist(tmp_path, netlist_file):
    _, path = netlist_file
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    np.save(tmp_path / "x.npy", np.zeros((3, 5), dtype=np.int64))
    r = lf("predict", "--netlist", str(path), "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "p.npz"))
    assert_one_line_error(r, "not valid JSON")


def test_predict_rejects_pickles(tmp_path, netlist_file):
    _, path = netlist_file
    np.save(tmp_path / "x.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    r = lf("predict", "--netlist", str(path), "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "p.npz"))
    assert_one_line_error(r, "x.npy")


def test_train_unknown_config_key(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("dataset: digits\nlearning_rate: 0.1\n")
    r = lf("train", "--config", str(cfg), "--runs-dir", str(tmp_path / "runs"))
    assert_one_line_error(r, "unknown key 'learning_rate'")
    assert not (tmp_path / "runs").exists()


def test_train_bad_override(tmp_path):
    r = lf("train", "--epochs", "zero", "--runs-dir", str(tmp_path / "runs"))
    assert_one_line_error(r, "epochs: expected int")


def test_train_missing_dataset(tmp_path):
    r = lf("train", "--dataset", "mnist", "--data_dir", str(tmp_path / "empty"), "--runs-dir", str(tmp_path / "runs"))
    assert_one_line_error(r, "mnist: dataset not found")
    assert "DATA_DIR" in r.stderr


def test_unknown_board(tmp_path, netlist_file):
    _, path = netlist_file
    r = lf("verilog", "--board", "nosuchboard", "--netlist", str(path), "--build-dir", str(tmp_path / "b"))
    assert_one_line_error(r, "nosuchboard")
    assert "icebreaker" in r.stderr and "generic" in r.stderr


def test_encoder_with_the_generic_board_is_an_error(tmp_path, netlist_file):
    """--board generic writes the core alone: an --encoder would be silently ignored."""
    _, path = netlist_file
    r = lf("verilog", "--board", "generic", "--encoder", "shift", "--netlist", str(path),
           "--build-dir", str(tmp_path / "b"))
    assert_one_line_error(r, "--encoder applies to a board top; --board generic writes the core alone")
    assert not (tmp_path / "b").exists()


def test_verilog_with_invalid_netlist(tmp_path, netlist_file):
    _, path = netlist_file
    path.write_text(path.read_text().replace('"version": 1', '"version": 7'))
    r = lf("verilog", "--board", "generic", "--netlist", str(path), "--build-dir", str(tmp_path / "b"))
    assert_one_line_error(r, "version")


def test_a_closed_pipe_ends_quietly(tmp_path):
    """``logicforge estimate ... | head -1``: when the reader has gone, the command stops with 141
    (128 + SIGPIPE) and no traceback."""
    import subprocess
    import sys

    import numpy as np

    from logicforge.netlist import generate

    generate.random_netlist(np.random.default_rng(0)).save(tmp_path / "n.json")
    proc = subprocess.Popen([sys.executable, "-m", "logicforge", "estimate", "--netlist", str(tmp_path / "n.json")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # before the command writes a byte
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, err
    assert "Traceback" not in err and "Error" not in err, err
