"""Config loading: documented keys only, safe YAML, overrides, one-line errors."""

import pytest

from logicforge.train import config


def test_shipped_default_config_differs_from_the_built_in_defaults_only_in_its_hardware_sizing():
    cfg = config.load("configs/default.yaml")
    assert cfg["dataset"] == "digits" and cfg["name"] == "default"
    # sized for the iCEBreaker and chosen on a validation split (docs/hardware.md, "Group size on digits")
    sized = {"layers": 4, "group_size": 60, "tau": 4.0, "mode": "hard_st", "lr_schedule": "cosine",
             "lr_end_factor": 0.03, "val_fraction": 0.2, "hardware.layers_per_stage": 1}
    flat, built_in = config.flatten(cfg), config.flatten(config.load(None))
    assert {k for k in flat if flat[k] != built_in[k]} == set(sized)
    assert {k: flat[k] for k in sized} == sized


def test_overrides_and_nested_keys(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("epochs: 5\nencoding:\n  thresholds: 4\n")
    cfg = config.load(p, {"lr": 0.5, "encoding.method": "uniform"})
    assert cfg["epochs"] == 5 and cfg["lr"] == 0.5
    assert cfg["encoding"] == {"method": "uniform", "thresholds": 4, "inputs_from": None}
    assert cfg["name"] == "c"


@pytest.mark.parametrize("text,needle", [
    ("foo: 1\n", "unknown key 'foo'"),
    ("encoding:\n  bits: 3\n", "unknown key 'encoding.bits'"),
    ("epochs: ten\n", "epochs: expected int"),
    ("epochs: 1.5\n", "epochs: expected int"),
    ("epochs: true\n", "epochs: expected int"),
    ("epochs: 0\n", "epochs: 0 is below the minimum"),
    ("mode: magic\n", "mode: 'magic' is not one of gumbel, softmax"),
    ("lr: null\n", "lr: must not be null"),
    ("- a\n- b\n", "top level must be a mapping"),
    ("epochs: [\n", "not valid YAML"),
    ("!!python/object/apply:os.system ['echo hacked']\n", "not valid YAML"),
    # node: lut4 (train/lut_model.py) and the keys it takes no part of
    ("node: lut4\n", "widths: node: lut4 needs widths"),
    ("node: lut4\nwidths: [20]\nwire_penalty: 0.1\n", "wire_penalty: 0.1 has no meaning with node: lut4"),
    ("node: lut4\nwidths: [20]\nfinetune_epochs: 3\n", "finetune_epochs: 3 has no meaning with node: lut4"),
    ("node: lut4\nwidths: [20]\nconnections: local\n", "connections: 'local' has no meaning with node: lut4"),
    ("node: lut4\nwidths: [20]\nconnections: grid\n", "connections: 'grid' has no meaning"),
    ("node: lut4\nwidths: [20]\nmode: softmax\n", "mode: 'softmax' has no meaning with node: lut4"),
    ("learn_wiring: false\n", "learn_wiring: only for node: lut4"),
    ("node: lut6\n", "node: 'lut6' is not one of gate, lut4"),
    ("node: lut4\nwidths: [20]\nlearn_wiring: 1\n", "learn_wiring: expected bool"),
])
def test_bad_configs(tmp_path, text, needle):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(config.ConfigError) as e:
        config.load(p)
    assert needle in str(e.value) and "\n" not in str(e.value)
    assert str(p) in str(e.value)


def test_unknown_override():
    with pytest.raises(config.ConfigError, match="command line: unknown key 'nope'"):
        config.load(None, {"nope": 1})


def test_missing_config_file(tmp_path):
    with pytest.raises(config.ConfigError, match="no such config file"):
        config.load(tmp_path / "missing.yaml")


def test_every_key_is_documented():
    from pathlib import Path

    doc = Path(__file__).resolve().parents[1].joinpath("docs", "training.md").read_text()
    for key in config.SCHEMA:
        assert f"| `{key}` |" in doc, key
