"""The netlist file: round trip, and every kind of bad file rejected with one line naming the field."""

import json

import numpy as np
import pytest

from logicforge.netlist import format as nf
from logicforge.netlist.generate import random_netlist


def test_round_trip(tmp_path, rng):
    net = random_netlist(rng, unused_features=2)
    net.extra["producer"] = {"tool": "test"}
    path = tmp_path / "n.json"
    net.save(path)
    back = nf.load(path)
    assert back.to_dict() == net.to_dict()
    assert back.extra == {"producer": {"tool": "test"}}
    assert json.loads(path.read_text())["format"] == "logicforge-netlist"


def _good(rng):
    return random_netlist(rng, features=3, layer_widths=(5,), classes=2, group_size=2).to_dict()


def _mutations():
    def set_(path, value):
        def f(d):
            node = d
            for k in path[:-1]:
                node = node[k]
            node[path[-1]] = value
        return f

    def delete(path):
        def f(d):
            node = d
            for k in path[:-1]:
                node = node[k]
            del node[path[-1]]
        return f

    return [
        (set_(["format"], "other"), "format"),
        (set_(["version"], 3), "version"),
        (set_(["version"], True), "version"),
        (delete(["inputs"]), "inputs"),
        (set_(["inputs", "features"], 0), "inputs.features"),
        (set_(["inputs", "features"], True), "inputs.features"),
        (set_(["inputs", "feature_width"], 99), "inputs.feature_width"),
        (set_(["inputs", "thresholds"], [[1], [2]]), "inputs.thresholds"),
        (set_(["inputs", "thresholds", 0], [3, 2]), "inputs.thresholds[0]"),
        (set_(["inputs", "thresholds", 0], [0]), "inputs.thresholds[0][0]"),
        (set_(["inputs", "thresholds", 0], [1.5]), "inputs.thresholds[0][0]"),
        (set_(["inputs", "thresholds"], [[], [], []]), "inputs.thresholds"),
        (set_(["layers"], []), "layers"),
        (set_(["layers", 0, "op"], [16, 0, 0, 0, 0]), "layers[0].op[0]"),
        (set_(["layers", 0, "a"], [0, 0, 0, 0, 10**6]), "layers[0].a[4]"),
        (set_(["layers", 0, "b"], [0, 0]), "layers[0]"),
        (set_(["layers", 0, "op"], "xor"), "layers[0].op"),
        (delete(["layers", 1, "b"]), "layers[1].b"),
        (set_(["outputs", "classes"], 3), "outputs.class_names"),
        (set_(["outputs", "group_size"], 3), "layers[1]"),
        (set_(["outputs", "tau"], -1.0), "outputs.tau"),
        (set_(["outputs", "class_names"], [1, 2]), "outputs.class_names"),
    ]


@pytest.mark.parametrize("mutate,field", _mutations())
def test_bad_netlists_are_rejected_naming_the_field(tmp_path, rng, mutate, field):
    d = _good(rng)
    mutate(d)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(d))
    with pytest.raises(nf.NetlistError) as e:
        nf.load(path)
    msg = str(e.value)
    assert "\n" not in msg
    assert f": {field}" in msg, msg


@pytest.mark.parametrize("text", ["", "{", "[1, 2]", "null", "\xff\xfe"])
def test_unparseable_files(tmp_path, text):
    path = tmp_path / "bad.json"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(nf.NetlistError) as e:
        nf.load(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(nf.NetlistError, match="no such netlist file"):
        nf.load(tmp_path / "nope.json")


def test_score_width():
    rng = np.random.default_rng(0)
    for g, s in [(1, 1), (2, 2), (3, 2), (4, 3), (100, 7), (127, 7), (128, 8)]:
        assert random_netlist(rng, classes=2, group_size=g).score_width == s
