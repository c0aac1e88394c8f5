"""The reference evaluator: the definition of a netlist's function, and of "discrete accuracy".

numpy only. Samples are bit-packed 64 to a word and each layer is evaluated for all its gates at once.
"""

from __future__ import annotations

import numpy as np

from logicforge.errors import LogicforgeError
from logicforge.netlist import lut
from logicforge.netlist.format import LutLayer, Netlist
from logicforge.netlist.gates import apply_bitwise


def check_feature_array(net: Netlist, shape: tuple, dtype, integer: bool, value_range) -> None:
    """The rules for a feature input, for any array library: LogicforgeError (one line) unless it is
    (samples, ``net.features``), of an integer ``dtype`` (``integer``), with every value in
    [0, 2**feature_width - 1]. ``value_range()`` returns (min, max); it is called only for a
    non-empty integer array."""
    if len(shape) != 2:
        raise LogicforgeError(f"input must be a 2-D (samples, features) array, got shape {tuple(shape)}")
    if shape[1] != net.features:
        raise LogicforgeError(f"input has {shape[1]} features per sample, the netlist expects {net.features}")
    if not integer:
        raise LogicforgeError(f"input must be integers (the quantised features), got dtype {dtype}")
    hi = (1 << net.feature_width) - 1
    if shape[0] and shape[1]:
        lo_v, hi_v = (int(v) for v in value_range())
        if lo_v < 0 or hi_v > hi:
            raise LogicforgeError(f"input values must lie in [0, {hi}] (feature_width {net.feature_width}), "
                                  f"got [{lo_v}, {hi_v}]")


def check_features(net: Netlist, x) -> np.ndarray:
    """Validate an (n, F) array of unsigned ``feature_width``-bit integers; return it as int64."""
    x = np.asarray(x)
    check_feature_array(net, x.shape, x.dtype, x.dtype.kind in "iu", lambda: (x.min(), x.max()))
    return x.astype(np.int64)


def pack(bits: np.ndarray) -> np.ndarray:
    """(rows, n) of 0/1 to (rows, ceil(n/64)) uint64 words; sample j is bit j % 64 of word j // 64."""
    rows, n = bits.shape
    words = -(-n // 64)
    padded = np.zeros((rows, words * 64), dtype=np.uint8)
    padded[:, :n] = bits
    return np.packbits(padded, axis=1, bitorder="little").view("<u8").astype(np.uint64)


def unpack(words: np.ndarray, n: int) -> np.ndarray:
    """Inverse of ``pack``: (rows, words) uint64 to (rows, n) uint8 of 0/1."""
    as_bytes = np.ascontiguousarray(words.astype("<u8")).view(np.uint8)
    return np.unpackbits(as_bytes, axis=1, bitorder="little")[:, :n]


def compare(x: np.ndarray, pairs) -> np.ndarray:
    """(n, F) integers to (n, len(pairs)) 0/1: column i is ``x[:, f] >= t`` for ``pairs[i] = (f, t)``."""
    feats = np.array([f for f, _ in pairs], dtype=np.int64)
    ths = np.array([t for _, t in pairs], dtype=np.int64)
    return (np.asarray(x)[:, feats] >= ths).astype(np.uint8)


def thermometer(x: np.ndarray, thresholds: list[list[int]]) -> np.ndarray:
    """Encode (n, F) integers to (n, bits) 0/1: one bit ``x[f] >= T`` per threshold, ordered by
    feature, then ascending threshold. The encoding that training and hardware share."""
    return compare(x, [(f, t) for f, ts in enumerate(thresholds) for t in ts])


def encode(net: Netlist, x) -> np.ndarray:
    """Thermometer-encode features: (n, F) integers to (num_inputs, n) bits."""
    return thermometer(check_features(net, x), net.thresholds).T


def layer_outputs(net: Netlist, x) -> list[np.ndarray]:
    """Packed outputs of the encoder and every layer: a list of (width, words) uint64 arrays."""
    words = pack(encode(net, x))
    outs = [words]
    for layer in net.layers:
        if isinstance(layer, LutLayer):
            words = lut.apply_bitwise(layer.table, words[layer.ins])
        else:
            words = apply_bitwise(layer.op, words[layer.a], words[layer.b])
        outs.append(words)
    return outs


def evaluate(net: Netlist, x) -> tuple[np.ndarray, np.ndarray]:
    """Return (scores, classes) for an (n, F) integer array.

    ``scores[i, k]`` is the popcount of class k's output group for sample i; ``classes[i]`` is the
    smallest k with the maximal score.
    """
    x = check_features(net, x)
    out = layer_outputs(net, x)[-1]
    return score(unpack(out, x.shape[0]).T, net.classes, net.group_size)


def score(bits: np.ndarray, classes: int, group_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(scores, classes) from the (n, K*G) 0/1 class-output bits: ``scores[i, k]`` is the popcount of
    bits ``k*G .. k*G+G-1`` of sample i, ``classes[i]`` the smallest k with the maximal score."""
    bits = np.asarray(bits)
    n = bits.shape[0]
    scores = bits.reshape(n, classes, group_size).sum(axis=2, dtype=np.int64)
    winners = np.argmax(scores, axis=1) if n else np.zeros(0, dtype=np.int64)
    return scores, winners.astype(np.int64)


def accuracy(net: Netlist, x, y) -> float:
    """Discrete accuracy: the fraction of samples whose reference class equals the label."""
    _, classes = evaluate(net, x)
    return float(np.mean(classes == np.asarray(y))) if len(classes) else 0.0
