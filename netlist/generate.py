"""Random netlists for tests and hardware checks: every op, constants, pass-throughs, ties."""

from __future__ import annotations

import numpy as np

from logicforge.netlist.format import Layer, Netlist
from logicforge.netlist.gates import NUM_OPS


def random_netlist(
    rng: np.random.Generator,
    *,
    features: int = 6,
    feature_width: int = 4,
    thresholds_per_feature: int = 3,
    layer_widths: tuple[int, ...] = (24, 16),
    classes: int = 3,
    group_size: int = 4,
    ops: np.ndarray | None = None,
    unused_features: int = 0,
    tau: float = 1.0,
) -> Netlist:
    """A valid netlist with random connections and ops drawn uniformly from ``ops`` (default all 16).

    The last ``unused_features`` features get no thresholds, so they never reach the network. The
    final layer has ``classes * group_size`` gates after ``layer_widths``.
    """
    hi = (1 << feature_width) - 1
    thresholds = []
    for f in range(features):
        if f >= features - unused_features:
            thresholds.append([])
            continue
        k = int(min(thresholds_per_feature, hi))
        thresholds.append(sorted(rng.choice(np.arange(1, hi + 1), size=k, replace=False).tolist()))
    ops = np.arange(NUM_OPS) if ops is None else np.asarray(ops)
    width_in = sum(len(t) for t in thresholds)
    layers = []
    for w in (*layer_widths, classes * group_size):
        layers.append(Layer(rng.choice(ops, size=w), rng.integers(0, width_in, w), rng.integers(0, width_in, w)))
        width_in = w
    return Netlist(features, feature_width, thresholds, layers,
                   [f"class{k}" for k in range(classes)], group_size, tau).validate()


def random_features(rng: np.random.Generator, net: Netlist, n: int) -> np.ndarray:
    """n uniformly random (n, F) feature vectors within the netlist's feature width."""
    return rng.integers(0, 1 << net.feature_width, size=(n, net.features), dtype=np.int64)
