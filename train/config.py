"""Training configuration: documented keys, safe YAML loading, command-line overrides.

Every key is listed in ``SCHEMA`` with its default, the values it may take and its meaning;
``logicforge train --help`` shows them (docs/training.md describes them by hand). An unknown key, a wrong type or a value out of
range is a one-line ``ConfigError``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from logicforge.errors import LogicforgeError


class ConfigError(LogicforgeError):
    pass


@dataclass(frozen=True)
class Key:
    default: Any
    kind: type | tuple  # int, float, str, bool, or a tuple of allowed strings
    help: str
    minimum: float | None = None
    nullable: bool = False
    below: float | None = None  # exclusive upper bound
    maximum: float | None = None  # inclusive upper bound


DATASETS = ("digits", "breast_cancer", "fashion_mnist", "mnist", "cifar10")

SCHEMA: dict[str, Key] = {
    "name": Key(None, str, "run name: results go to runs/<name>/ (default: the config file's stem)", nullable=True),
    "dataset": Key("digits", DATASETS, "dataset to train on"),
    "data_dir": Key(None, str, "directory searched for dataset files (also env DATA_DIR)", nullable=True),
    "encoding.method": Key("quantile", ("uniform", "quantile"),
                           "thermometer thresholds: evenly spaced over each feature's training range, or at training-data quantiles"),
    "encoding.thresholds": Key(8, int, "thresholds (encoded bits) per feature, at most", minimum=1),
    "encoding.inputs_from": Key(None, str, "use only the encoded bits another network keeps after the passes: a "
                                "netlist file, a run directory, or a config file whose run is trained first "
                                "(reused when finished); method and thresholds are then unused", nullable=True),
    "node": Key("gate", ("gate", "lut4"),
                "network node: gate: the 16 two-input gates (netlist/gates.py); lut4: learned 4-input truth tables "
                "with learned wiring, widths giving the LUT4 layers and a head of two-input gates reading the inputs "
                "and every LUT4 layer (docs/training.md, \"LUT4 nodes\"). lut4 takes no gate-only key "
                "(mode, gumbel_*, cage_margin, init, residual_logit, connections, local_radius, backend, "
                "wire_penalty, finetune_epochs) away from its default"),
    "learn_wiring": Key(True, bool, "node: lut4 only: learn each LUT pin's input (argmax of a weight column, "
                        "softmax gradient); false: the random initial wiring stays fixed"),
    "wiring_radius": Key(0, int, "node: lut4 only: local wiring: every node (hidden and head) sits at a random pixel "
                         "and reads only the input bits and nodes within this many rows and columns of it (square "
                         "images), so that place and route keeps nets short; 0: anywhere", minimum=0),
    "layers": Key(3, int, "number of gate layers (the last one has classes*group_size gates)", minimum=1),
    "width": Key(1000, int, "gates in each layer but the last", minimum=1),
    "widths": Key(None, list, "gates in each hidden layer, e.g. [2400, 1200, 600]; replaces layers and width when set",
                  nullable=True),
    "group_size": Key(None, int, "output gates per class (default: width // classes)", minimum=1, nullable=True),
    "tau": Key(8.0, float, "GroupSum temperature: class score = popcount / tau", minimum=1e-6),
    "mode": Key("gumbel", ("gumbel", "softmax", "hard_st", "cage"),
                "estimator: gumbel: hard sampled gates, straight-through; softmax: difflogic's relaxation; "
                "hard_st: noise-free argmax forward, softmax backward; cage: hard_st with a confidence-adaptive backward temperature"),
    "gumbel_temperature": Key(1.0, float, "Gumbel-softmax temperature (start value when scheduled); the backward temperature of hard_st and cage", minimum=1e-6),
    "gumbel_temperature_end": Key(None, float, "final Gumbel temperature; null keeps it constant", minimum=1e-6, nullable=True),
    "gumbel_schedule": Key("cosine", ("linear", "cosine", "exponential"), "how the temperature moves from start to end over the epochs"),
    "cage_margin": Key(2.0, float, "cage: the largest top-two logit margin the backward softmax sees (temperature rises above it)", minimum=1e-6),
    "init": Key("residual", ("residual", "gaussian"), "gate logits: N(0,1), or zero with the pass-through gate A raised"),
    "residual_logit": Key(5.0, float, "logit of gate A under the residual init"),
    "connections": Key("unique", ("random", "unique", "local", "grid"),
                       "random input pairs, or pairs that use every input of the layer; local: the first layer pairs "
                       "bits of nearby pixels (square images), later layers unique; grid: every gate has a pixel "
                       "position and every layer reads only nearby gates (square images)"),
    "local_radius": Key(2, int, "connections: local and grid: the second input is at most this many rows and "
                        "columns away",
                        minimum=0),
    "lr": Key(0.03, float, "Adam learning rate", minimum=0.0),
    "lr_schedule": Key("constant", ("constant", "cosine"), "learning rate over the run: constant, or cosine decay to lr_end_factor * lr (per step)"),
    "lr_end_factor": Key(0.01, float, "final learning rate of the cosine schedule, as a fraction of lr", minimum=0.0),
    "batch_size": Key(64, int, "samples per step (global, over all ranks)", minimum=1),
    "epochs": Key(150, int, "passes over the training set", minimum=1),
    "seed": Key(0, int, "seed for initialisation, connections, shuffling and Gumbel noise"),
    "device": Key("auto", ("auto", "cpu", "cuda"), "where to train: auto picks CUDA when available"),
    "threads": Key(None, int, "CPU threads; null: 1 for small networks (width*batch_size < 1M), else PyTorch's default", minimum=1, nullable=True),
    "backend": Key("auto", ("auto", "torch", "cpp", "triton"), "logic-layer kernel: auto picks Triton on CUDA, the C++ kernel on CPU"),
    "val_fraction": Key(0.0, float, "fraction of each class of the training split held out as a validation set "
                        "(fixed split, the same for every seed); its discrete accuracy is logged every epoch. "
                        "0: train on the whole training split", minimum=0.0, below=1.0),
    "wire_penalty": Key(0.0, float, "weight of a loss term on the probability of two-input gates (mean over all "
                        "neurons): pushes gates that matter little toward wires and constants, which the netlist "
                        "passes remove (fewer LUTs and live input bits)", minimum=0.0),
    "wire_penalty_ramp": Key(0.0, float, "fraction of the run (in steps) over which wire_penalty rises linearly from 0 "
                             "to its value (gradual pruning: the network first learns unpenalised); 0: constant",
                             minimum=0.0, maximum=1.0),
    "finetune_epochs": Key(0, int, "epochs after `epochs` that fine-tune the discrete network: every gate that does not "
                           "read both inputs is frozen at its gate (wires, inversions and constants stay what the "
                           "passes remove), the others train with the most likely gate forward and the softmax "
                           "gradient backward (hard straight-through, temperature 1), without the wire penalty; "
                           "0: off", minimum=0),
    "finetune_lr": Key(0.01, float, "Adam learning rate of the fine-tune, cosine decay to 0 (per step)", minimum=0.0),
    "distill.teacher": Key(None, str, "knowledge distillation: a trained run directory or netlist file whose class logits "
                           "(group popcount / tau, by the reference evaluator) on the training samples are soft "
                           "targets; null: off", nullable=True),
    "distill.weight": Key(0.5, float, "weight of the soft-target loss; the label loss gets 1 - weight", minimum=0.0,
                          maximum=1.0),
    "distill.temperature": Key(2.0, float, "softmax temperature of teacher and student in the soft-target loss",
                               minimum=1e-6),
    "hardware.board": Key(None, str, "board whose cost model estimates the netlist every epoch (e.g. icebreaker); null: no estimate", nullable=True),
    "hardware.max_lcs": Key(None, int, "logic-cell budget on hardware.board: training fails, printing the best estimate, when the final netlist exceeds it", minimum=1, nullable=True),
    "hardware.layers_per_stage": Key(None, int, "gate levels per pipeline stage the run's board design is estimated and built with (the default of logicforge verilog/sim/estimate/synth/bitstream/demo for this run); null: the head's measured default", minimum=1, nullable=True),
    "hardware.encoder": Key(None, ("stream", "shift"), "the board top's threshold encoder the run's design is estimated and built with (boards.top.ENCODERS; the default of logicforge verilog/sim --top/estimate/synth/bitstream/demo for this run); null: stream", nullable=True),
}


def defaults() -> dict:
    return unflatten({k: copy.deepcopy(v.default) for k, v in SCHEMA.items()})


#: Deepest nesting of mappings accepted in a config (the schema needs 2).
MAX_DEPTH = 8


def flatten(d: dict, prefix: str = "", _depth: int = 0) -> dict:
    if _depth > MAX_DEPTH:  # also stops a YAML alias that contains itself
        raise ConfigError(f"config: {prefix.rstrip('.')[:80]}: nested deeper than {MAX_DEPTH} levels")
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + ".", _depth + 1))
        else:
            out[key] = v
    return out


def unflatten(flat: dict) -> dict:
    out: dict = {}
    for key, v in flat.items():
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = v
    return out


def check_value(key: str, value, source: str):
    """Validate (and coerce int->float) one value; raise ConfigError naming the key."""
    spec = SCHEMA[key]
    if value is None:
        if spec.nullable:
            return None
        raise ConfigError(f"{source}: {key}: must not be null")
    if isinstance(spec.kind, tuple):
        if value not in spec.kind:
            raise ConfigError(f"{source}: {key}: {value!r} is not one of {', '.join(spec.kind)}")
        return value
    if spec.kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(value, bool) != (spec.kind is bool) or not isinstance(value, spec.kind):
        raise ConfigError(f"{source}: {key}: expected {spec.kind.__name__}, got {type(value).__name__} {value!r}")
    if spec.kind is list:
        if not value or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value):
            raise ConfigError(f"{source}: {key}: expected a non-empty list of positive integers, got {value!r}")
        return list(value)
    if spec.minimum is not None and value < spec.minimum:
        raise ConfigError(f"{source}: {key}: {value!r} is below the minimum {spec.minimum}")
    if spec.maximum is not None and not value <= spec.maximum:  # NaN too
        raise ConfigError(f"{source}: {key}: {value!r} is above the maximum {spec.maximum}")
    if spec.below is not None and not value < spec.below:  # NaN too
        raise ConfigError(f"{source}: {key}: {value!r} must be below {spec.below}")
    return value


#: Keys that only the gate network reads: with ``node: lut4`` each must keep its default.
GATE_ONLY = ("mode", "gumbel_temperature", "gumbel_temperature_end", "gumbel_schedule", "cage_margin", "init",
             "residual_logit", "connections", "local_radius", "backend", "wire_penalty", "wire_penalty_ramp",
             "finetune_epochs", "finetune_lr")


def check_combinations(flat: dict, source: str) -> None:
    """Cross-key rules of a resolved (flat) config; ConfigError naming the key."""
    if flat["node"] == "gate":
        if flat["learn_wiring"] is not SCHEMA["learn_wiring"].default:
            raise ConfigError(f"{source}: learn_wiring: only for node: lut4 (the gate network's wiring is fixed)")
        if flat["wiring_radius"] != SCHEMA["wiring_radius"].default:
            raise ConfigError(f"{source}: wiring_radius: only for node: lut4 (the gate network's locality is "
                              "connections: local or grid with local_radius)")
        return
    if not flat["widths"]:
        raise ConfigError(f"{source}: widths: node: lut4 needs widths, the LUT4 layers' sizes (e.g. [200, 100])")
    for key in GATE_ONLY:
        if flat[key] != SCHEMA[key].default:
            raise ConfigError(f"{source}: {key}: {flat[key]!r} has no meaning with node: lut4 "
                              f"(leave it at its default {SCHEMA[key].default!r})")


def resolve(d: dict | None, source: str, *, check: bool = True) -> dict:
    """Merge ``d`` over the defaults after checking every key and value (and, with ``check``, the
    cross-key rules of ``check_combinations``)."""
    if d is None:
        d = {}
    if not isinstance(d, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of keys to values")
    flat = flatten(defaults())
    for key, value in flatten(d).items():
        if key not in SCHEMA:
            raise ConfigError(f"{source}: unknown key {key!r} (known keys: {', '.join(SCHEMA)})")
        flat[key] = check_value(key, value, source)
    if check:
        check_combinations(flat, source)
    return unflatten(flat)


def load(path: str | Path | None, overrides: dict | None = None) -> dict:
    """Load a YAML config safely, apply ``overrides`` (flat dotted keys), and resolve it."""
    data: dict = {}
    source = "config"
    if path is not None:
        path = Path(path)
        source = str(path)
        try:
            data = yaml.safe_load(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such config file") from None
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path}: cannot read config ({e.__class__.__name__})") from None
        except RecursionError:
            raise ConfigError(f"{path}: YAML nested too deeply") from None
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" (line {mark.line + 1})" if mark else ""
            what = " ".join(str(getattr(e, "problem", None) or e).split())  # one line
            raise ConfigError(f"{path}: not valid YAML{where}: {what}") from None
    cfg = resolve(data, source, check=not overrides)
    if overrides:
        flat = flatten(cfg)
        for key, value in overrides.items():
            if key not in SCHEMA:
                raise ConfigError(f"command line: unknown key {key!r}")
            flat[key] = check_value(key, value, "command line")
        check_combinations(flat, f"{source} with the command line" if path is not None else "command line")
        cfg = unflatten(flat)
    if cfg["name"] is None:
        cfg["name"] = path.stem if path is not None else "default"
    return cfg


def parse_override(key: str, text: str):
    """Parse a command-line value with YAML's scalar rules (safe): 3 -> int, 0.1 -> float, null."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        raise ConfigError(f"command line: {key}: cannot parse {text!r}") from None
