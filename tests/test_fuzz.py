"""Property-based fuzzing (Hypothesis) of every file a user hands the tool: netlist JSON, YAML
configs, ``.npy`` inputs and training checkpoints.

Each example must end in either a one-line ``LogicforgeError`` (exit status 2 from the command
line, no traceback) or correct output; any other exception is a crash and fails the test. The
commands run in-process through ``logicforge.cli.main`` (the same code path as the ``logicforge``
executable, without an interpreter start per example). Budgets: the Hypothesis profile ``ci``
(default) or ``long`` (``make fuzz``), see tests/conftest.py and docs/verification.md.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis is a dev extra (pip install -e .[dev])")
pytestmark = pytest.mark.fuzz
from hypothesis import given  # noqa: E402
from hypothesis import strategies as hs  # noqa: E402

from logicforge import cli  # noqa: E402
from logicforge.errors import LogicforgeError  # noqa: E402
from logicforge.netlist import format as nf  # noqa: E402
from logicforge.netlist import reference  # noqa: E402
from logicforge.netlist.generate import random_features, random_netlist  # noqa: E402


def run_cli(*argv) -> tuple[int, str]:
    """``logicforge argv`` in-process: (exit status, stderr). A crash propagates as an exception."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = cli.main([str(a) for a in argv])
    return rc, err.getvalue()


def assert_clean(rc: int, err: str) -> None:
    assert rc in (0, 2), (rc, err)
    if rc == 2:
        lines = [l for l in err.splitlines() if l.strip()]
        assert len(lines) == 1 and lines[0].startswith("logicforge "), err
        assert "Traceback" not in err


BASE_NET = random_netlist(np.random.default_rng(0), features=4, feature_width=4, thresholds_per_feature=2,
                          layer_widths=(8,), classes=3, group_size=2)
BASE_DICT = BASE_NET.to_dict()
X_OK = random_features(np.random.default_rng(1), BASE_NET, 8)

json_scalars = hs.one_of(hs.none(), hs.booleans(), hs.integers(min_value=-2**70, max_value=2**70),
                         hs.floats(allow_nan=True, allow_infinity=True), hs.text(max_size=8))
json_values = hs.recursive(json_scalars, lambda c: hs.one_of(hs.lists(c, max_size=4),
                                                              hs.dictionaries(hs.text(max_size=5), c, max_size=3)),
                           max_leaves=8)


def _paths(obj, prefix=()):
    """Every (path) into a JSON object, to pick a field to mutate."""
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:6]):
            yield from _paths(v, prefix + (i,))


ALL_PATHS = list(_paths(BASE_DICT))[1:]


@hs.composite
def mutated_netlists(draw):
    d = copy.deepcopy(BASE_DICT)
    for _ in range(draw(hs.integers(1, 3))):
        path = draw(hs.sampled_from(ALL_PATHS))
        parent = d
        try:
            for k in path[:-1]:
                parent = parent[k]
            key = path[-1]
            kind = draw(hs.sampled_from(["value", "delete", "int", "grow", "shrink"]))
            if kind == "value":
                parent[key] = draw(json_values)
            elif kind == "delete":
                del parent[key]
            elif kind == "int":  # indices and sizes: near the edges and far out
                parent[key] = draw(hs.one_of(hs.integers(-3, 40), hs.integers(-2**64, 2**64)))
            elif kind == "grow" and isinstance(parent[key], list):
                parent[key] = parent[key] + draw(hs.lists(hs.integers(-2, 20), max_size=3))
            elif kind == "shrink" and isinstance(parent[key], list):
                parent[key] = parent[key][: draw(hs.integers(0, max(0, len(parent[key]) - 1)))]
        except (KeyError, IndexError, TypeError):
            pass  # an earlier mutation removed or replaced the path
    return d


@given(d=mutated_netlists(), raw=hs.one_of(hs.none(), hs.binary(max_size=64)), cut=hs.integers(0, 400))
def test_fuzz_netlist_json(tmp_path, d, raw, cut):
    """Mutated fields, types, sizes and indices; truncated text; random bytes."""
    path = tmp_path / "n.json"
    text = json.dumps(d)
    if raw is not None:
        path.write_bytes(raw if cut % 2 else text.encode()[:cut] + raw)
    else:
        path.write_text(text)
    np.save(tmp_path / "x.npy", X_OK)
    out = tmp_path / "p.npz"
    out.unlink(missing_ok=True)
    rc, err = run_cli("predict", "--netlist", path, "--input", tmp_path / "x.npy", "--output", out)
    assert_clean(rc, err)
    if rc == 0:  # correct output: the reference evaluator of what the loader accepted
        net = nf.load(path)
        scores, classes = reference.evaluate(net, X_OK)
        with np.load(out) as p:
            np.testing.assert_array_equal(p["scores"], scores)
            np.testing.assert_array_equal(p["classes"], classes)
    else:
        assert not out.exists()


def test_fuzz_netlist_deep_nesting(tmp_path):
    (tmp_path / "n.json").write_text("[" * 100000 + "]" * 100000)
    np.save(tmp_path / "x.npy", X_OK)
    rc, err = run_cli("predict", "--netlist", tmp_path / "n.json", "--input", tmp_path / "x.npy",
                      "--output", tmp_path / "p.npz")
    assert rc == 2 and "nested too deeply" in err


# -- YAML configs --------------------------------------------------------------------------------

from logicforge.train import config  # noqa: E402

yaml_keys = hs.one_of(hs.sampled_from(sorted(config.SCHEMA) + ["encoding", "learning_rate", "layers.x", ""]),
                      hs.text(max_size=10))
yaml_values = hs.one_of(json_scalars, hs.integers(min_value=-10**30, max_value=10**30),
                        hs.sampled_from(["gumbel", "softmax", "digits", "nan", ".inf", "-.inf", "1e999", "~", "[]", "{}"]),
                        hs.lists(hs.integers(), max_size=3), hs.dictionaries(hs.text(max_size=4), json_scalars, max_size=2))


@given(entries=hs.dictionaries(yaml_keys, yaml_values, max_size=5),
       garbage=hs.one_of(hs.none(), hs.text(max_size=40), hs.sampled_from(
           ["a: &x {b: *x}\n", "a: [", "- 1\n- 2\n", ": :\n", "\t\tx: 1", "!!python/object:os.system {}\n",
            "epochs: !!float 1e400\n", "%YAML 9.9\n---\nx: 1\n"])))
def test_fuzz_yaml_config(tmp_path, entries, garbage):
    """Unknown keys, wrong types, extreme values, YAML syntax errors and tags: a ConfigError (a
    LogicforgeError, one line) or a config whose every value passes the schema again."""
    import yaml

    path = tmp_path / "c.yaml"
    if garbage is not None:
        path.write_text(garbage)
    else:
        path.write_text(yaml.safe_dump(config.unflatten({str(k): v for k, v in entries.items() if k and ".." not in str(k)
                                                         and not str(k).startswith(".") and not str(k).endswith(".")}))
                        if entries else "")
    try:
        cfg = config.load(path)
    except LogicforgeError as e:
        assert "\n" not in str(e)
        return
    flat = config.flatten(cfg)
    assert set(flat) == set(config.SCHEMA)
    for key, value in flat.items():
        if key != "name":
            assert config.check_value(key, value, "re-check") == value


def test_fuzz_yaml_files_that_are_not_text(tmp_path):
    for name, data in [("bin.yaml", b"\xff\xfe\x00\x81"), ("deep.yaml", b"[" * 20000 + b"]" * 20000)]:
        (tmp_path / name).write_bytes(data)
        with pytest.raises(LogicforgeError):
            config.load(tmp_path / name)
    with pytest.raises(LogicforgeError, match="cannot read"):
        config.load(tmp_path)  # a directory


# -- .npy inputs ---------------------------------------------------------------------------------

dtypes = hs.sampled_from(["int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32",
                          "float64", "bool", "complex64", "U3", "S2", "datetime64[s]"])


@given(dtype=dtypes, shape=hs.lists(hs.integers(0, 6), min_size=0, max_size=3),
       fill=hs.sampled_from(["ok", "neg", "big", "nan", "max"]), features=hs.sampled_from([4, 3, 5]))
def test_fuzz_npy_arrays(tmp_path, dtype, shape, fill, features):
    """dtypes, shapes, NaN, negative and too-large values."""
    rng = np.random.default_rng(len(shape))
    shape = tuple(shape) if len(shape) != 2 else (shape[0], features)
    base = rng.integers(0, 16, size=shape)
    if fill == "neg":
        base = base - 20
    elif fill == "big":
        base = base + 2**40
    elif fill == "max":
        base = base * 0 + (2**63 - 1)
    with np.errstate(all="ignore"):
        x = base.astype(dtype) if dtype not in ("U3", "S2") else base.astype(str).astype(dtype)
        if fill == "nan" and x.dtype.kind in "fc":
            x.flat[: max(1, x.size // 2)] = np.nan
    np.save(tmp_path / "x.npy", x)
    BASE_NET.save(tmp_path / "n.json")
    out = tmp_path / "p.npz"
    rc, err = run_cli("predict", "--netlist", tmp_path / "n.json", "--input", tmp_path / "x.npy", "--output", out)
    assert_clean(rc, err)
    if rc == 0:
        assert x.ndim == 2 and x.shape[1] == 4 and x.dtype.kind in "iu"
        scores, classes = reference.evaluate(BASE_NET, x)
        with np.load(out) as p:
            np.testing.assert_array_equal(p["classes"], classes)
            np.testing.assert_array_equal(p["scores"], scores)


@given(data=hs.binary(max_size=200), cut=hs.integers(0, 300), pickle=hs.booleans())
def test_fuzz_npy_files(tmp_path, data, cut, pickle):
    """Pickles, truncated files, random bytes after a valid header."""
    path = tmp_path / "x.npy"
    if pickle:
        np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    else:
        buf = io.BytesIO()
        np.save(buf, X_OK)
        path.write_bytes(buf.getvalue()[:cut] + data)
    BASE_NET.save(tmp_path / "n.json")
    rc, err = run_cli("predict", "--netlist", tmp_path / "n.json", "--input", path, "--output", tmp_path / "p.npz")
    assert_clean(rc, err)
    if pickle:
        assert rc == 2


# -- checkpoints ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny finished run and its checkpoint bytes."""
    from logicforge.train.trainer import train

    cfg = config.resolve({"layers": 2, "width": 40, "epochs": 2, "encoding": {"thresholds": 2},
                          "backend": "torch"}, "fuzz") | {"name": "f"}
    run = tmp_path_factory.mktemp("ckpt") / "f"
    train(cfg, run, progress=False)
    return cfg, run, (run / "checkpoint.pt").read_bytes()


def _resume(cfg, run):
    from logicforge.train.trainer import Trainer

    t = Trainer(cfg, run, progress=False)
    t.load_checkpoint()
    return t


@given(cut=hs.integers(0, 10**6), flips=hs.lists(hs.tuples(hs.integers(0, 10**6), hs.integers(1, 255)), max_size=4))
def test_fuzz_truncated_or_corrupted_checkpoint(trained, cut, flips):
    cfg, run, good = trained
    data = bytearray(good[: cut % (len(good) + 1)] if cut % 3 else good)
    for pos, x in flips:
        if data:
            data[pos % len(data)] ^= x
    (run / "checkpoint.pt").write_bytes(bytes(data))
    try:
        t = _resume(cfg, run)
    except LogicforgeError as e:
        assert "\n" not in str(e) and "checkpoint" in str(e)
        return
    finally:
        (run / "checkpoint.pt").write_bytes(good)
    assert t.epoch == len(t.history)  # loaded: a consistent state


@given(obj=hs.one_of(json_values, hs.dictionaries(hs.sampled_from(
    ["config", "epoch", "step", "history", "train_seconds", "model", "optimizer"]), json_values, max_size=7)))
def test_fuzz_checkpoint_with_wrong_contents(trained, obj):
    """A loadable torch file that is not a logicforge checkpoint (wrong types, missing keys)."""
    import torch

    cfg, run, good = trained
    try:
        torch.save(obj, run / "checkpoint.pt")
        with pytest.raises(LogicforgeError):
            _resume(cfg, run)
    finally:
        (run / "checkpoint.pt").write_bytes(good)


def test_damaged_checkpoint_from_the_command_line(trained, tmp_path):
    """The CLI path: `train --resume` on a truncated checkpoint is one line and exit 2."""
    cfg, run, good = trained
    import yaml

    runs = tmp_path / "runs"
    (runs / "f").mkdir(parents=True)
    (runs / "f" / "checkpoint.pt").write_bytes(good[: len(good) // 2])
    c = tmp_path / "f.yaml"
    c.write_text(yaml.safe_dump({k: v for k, v in cfg.items() if k != "name"}))
    rc, err = run_cli("train", "--config", c, "--runs-dir", runs, "--resume", "--quiet")
    assert rc == 2 and "checkpoint" in err, err
