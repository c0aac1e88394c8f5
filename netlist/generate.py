"""Random netlists for tests and hardware checks: every op, constants, pass-throughs, ties."""

from __future__ import annotations

import numpy as np

from logicforge.netlist import lut
from logicforge.netlist.format import Layer, LutLayer, Netlist
from logicforge.netlist.gates import NUM_OPS

#: Tables that exercise the passes: constants, wires and inversions of one pin, two- and three-pin
#: functions (AND, XOR of pins 0 and 1; a majority and a multiplexer of pins 0..2), the 4-input parity.
SPECIAL_TABLES = (0x0000, 0xFFFF, 0xAAAA, 0x5555, 0xCCCC, 0x8888, 0x6666, 0xE8E8, 0xCACA, 0x6996)


def random_lut_layer(rng: np.random.Generator, width: int, width_in: int) -> LutLayer:
    """``width`` LUT4 nodes reading random inputs (a quarter of the pins repeat pin 0's input); half
    the tables uniformly random, half from ``SPECIAL_TABLES``."""
    ins = rng.integers(0, width_in, (width, lut.PINS))
    dup = rng.random((width, lut.PINS)) < 0.25
    ins[dup] = np.repeat(ins[:, :1], lut.PINS, axis=1)[dup]
    tables = rng.integers(0, 1 << lut.TABLE_BITS, width)
    special = rng.random(width) < 0.5
    tables[special] = rng.choice(SPECIAL_TABLES, int(special.sum()))
    return LutLayer(tables, ins)


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
    lut_layers: tuple[int, ...] = (),
) -> Netlist:
    """A valid netlist with random connections and ops drawn uniformly from ``ops`` (default all 16).

    The last ``unused_features`` features get no thresholds, so they never reach the network. The
    final layer has ``classes * group_size`` gates after ``layer_widths``. The layers numbered in
    ``lut_layers`` (0-based, the final layer is ``len(layer_widths)``) are LUT4 layers
    (``random_lut_layer``).
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
    for i, w in enumerate((*layer_widths, classes * group_size)):
        if i in lut_layers:
            layers.append(random_lut_layer(rng, w, width_in))
            width_in = w
            continue
        layers.append(Layer(rng.choice(ops, size=w), rng.integers(0, width_in, w), rng.integers(0, width_in, w)))
        width_in = w
    return Netlist(features, feature_width, thresholds, layers,
                   [f"class{k}" for k in range(classes)], group_size, tau).validate()


def random_features(rng: np.random.Generator, net: Netlist, n: int) -> np.ndarray:
    """n uniformly random (n, F) feature vectors within the netlist's feature width."""
    return rng.integers(0, 1 << net.feature_width, size=(n, net.features), dtype=np.int64)
