"""Facts about a netlist's structure: which gates can influence a class output, the gate mix."""

from __future__ import annotations

import numpy as np

from logicforge.netlist.format import LutLayer, Netlist
from logicforge.netlist.gates import NAMES, NUM_OPS


def unused_gate_fraction(net: Netlist) -> float:
    """Fraction of gates whose output cannot reach any class output.

    Liveness is the dead-gate pass's (``passes.live_nodes``): a gate is live if a live consumer's op
    actually reads the input it drives; every last-layer gate is live.
    """
    from logicforge.netlist import passes

    g = passes.from_netlist(net)
    return 1.0 - int(passes.live_nodes(g)[g.first_gate:].sum()) / g.num_gates


def op_histogram(net: Netlist) -> dict[str, int]:
    """Count of each gate type over all gate layers, keyed by gate name; with LUT4 layers also
    ``"LUT4"``, their node count."""
    counts = np.zeros(NUM_OPS, dtype=np.int64)
    tables = 0
    for layer in net.layers:
        if isinstance(layer, LutLayer):
            tables += len(layer)
        else:
            counts += np.bincount(layer.op, minlength=NUM_OPS)
    hist = {NAMES[i]: int(c) for i, c in enumerate(counts)}
    if tables:
        hist["LUT4"] = tables
    return hist
