"""Thermometer thresholds fitted on training data (the encoding itself is netlist.reference.thermometer)."""

from __future__ import annotations

import numpy as np


def fit_thresholds(x_train: np.ndarray, count: int, method: str) -> list[list[int]]:
    """Per feature, up to ``count`` sorted integer thresholds T with min < T <= max of the data.

    - ``uniform``: evenly spaced over the feature's training range;
    - ``quantile``: at the (j+1)/(count+1) quantiles of the training data.

    Duplicates are dropped, so a feature with few distinct values gets fewer thresholds, and a
    constant feature none. Every threshold splits the training data into two non-empty parts.
    """
    x = np.asarray(x_train, dtype=np.int64)
    fractions = np.arange(1, count + 1) / (count + 1)
    out = []
    for col in x.T:
        lo, hi = int(col.min()), int(col.max())
        if hi == lo:
            out.append([])
            continue
        if method == "uniform":
            cand = lo + fractions * (hi - lo)
        elif method == "quantile":
            cand = np.quantile(col, fractions)
        else:
            raise ValueError(f"unknown encoding method {method!r}")
        ts = np.unique(np.clip(np.ceil(cand).astype(np.int64), lo + 1, hi))
        ts = ts[ts > lo]
        out.append(ts.tolist())
    return out


def pool_thresholds(source: str, *, features: int, feature_width: int, runs_dir, quiet: bool = False,
                    may_train: bool = True) -> list[list[int]]:
    """The thresholds of the encoded bits another network keeps (``encoding.inputs_from``): the
    comparators its netlist still reads after the passes, per feature, ascending.

    ``source``: a netlist file, a run directory (its ``netlist.json``), or a config file (``.yaml``),
    whose run (``runs_dir/<name>``) is trained first unless it is already finished with that config
    (not with ``may_train`` false: several ranks; the global torch generator is left as it was).
    LogicforgeError (one line) when the source cannot be read or encodes other features."""
    from pathlib import Path

    from logicforge.errors import LogicforgeError
    from logicforge.netlist import format as nf
    from logicforge.netlist import passes

    path = Path(source)
    if path.suffix in (".yaml", ".yml"):
        from logicforge.train import config
        from logicforge.train.trainer import CHECKPOINT, finished_run, train

        cfg = config.load(path)
        run_dir = Path(runs_dir) / cfg["name"]
        if not finished_run(run_dir, cfg):
            if not may_train:
                raise LogicforgeError(f"encoding.inputs_from: {run_dir} is not a finished run of {path}; "
                                      "train it first (logicforge train --config ...)")
            if not quiet:
                print(f"encoding.inputs_from: training {path} into {run_dir} first", flush=True)
            import torch

            with torch.random.fork_rng(devices=[]):
                train(cfg, run_dir, resume=(run_dir / CHECKPOINT).exists(), progress=not quiet)
        path = run_dir / "netlist.json"
    elif path.is_dir():
        path = path / "netlist.json"
    net = nf.load(path)
    if net.features != features or net.feature_width != feature_width:
        raise LogicforgeError(f"encoding.inputs_from: {path} encodes {net.features} features of {net.feature_width} "
                              f"bits, the dataset has {features} of {feature_width}")
    graph, _ = passes.optimize(net)
    out: list[list[int]] = [[] for _ in range(features)]
    for f, t in graph.inputs:
        out[f].append(int(t))
    return [sorted(ts) for ts in out]
