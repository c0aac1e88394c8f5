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
