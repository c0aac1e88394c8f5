"""Facts about a netlist's structure: which gates can influence a class output, the gate mix."""

from __future__ import annotations

import numpy as np

from logicforge.netlist.format import Netlist
from logicforge.netlist.gates import NAMES, NUM_OPS, READS_A, READS_B


def live_gates(net: Netlist) -> list[np.ndarray]:
    """Per layer, a boolean mask of the gates whose output can reach a class output.

    A gate is live if some live consumer's op actually reads the input it drives (a constant or a
    single-input gate ignores the other input). Every last-layer gate is live.
    """
    masks = [np.zeros(len(layer), dtype=bool) for layer in net.layers]
    masks[-1][:] = True
    for i in range(len(net.layers) - 1, 0, -1):
        layer, live = net.layers[i], masks[i]
        reads_a = live & READS_A[layer.op]
        reads_b = live & READS_B[layer.op]
        masks[i - 1][layer.a[reads_a]] = True
        masks[i - 1][layer.b[reads_b]] = True
    return masks


def unused_gate_fraction(net: Netlist) -> float:
    """Fraction of gates whose output cannot reach any class output."""
    live = sum(int(m.sum()) for m in live_gates(net))
    return 1.0 - live / net.num_gates


def op_histogram(net: Netlist) -> dict[str, int]:
    """Count of each gate type over all layers, keyed by gate name."""
    counts = np.zeros(NUM_OPS, dtype=np.int64)
    for layer in net.layers:
        counts += np.bincount(layer.op, minlength=NUM_OPS)
    return {NAMES[i]: int(c) for i, c in enumerate(counts)}
