"""A trained ``LogicNet`` to its discrete netlist (the argmax gate of every neuron)."""

from __future__ import annotations

from logicforge.netlist.format import Layer, Netlist
from logicforge.train.model import LogicNet


def to_netlist(model: LogicNet, *, features: int, feature_width: int, thresholds: list[list[int]],
               class_names: list[str], extra: dict | None = None) -> Netlist:
    layers = [Layer(l.ops().cpu().numpy(), l.ia.cpu().numpy(), l.ib.cpu().numpy()) for l in model.layers]
    group = model.layers[-1].out_dim // model.head.classes
    return Netlist(features, feature_width, thresholds, layers, list(class_names), group,
                   float(model.head.tau), dict(extra or {})).validate()


#: The table of a wire node: pin 0 (the netlist passes turn these back into plain connections).
WIRE_TABLE = 0xAAAA


def lut_to_netlist(model, *, features: int, feature_width: int, thresholds: list[list[int]],
                   class_names: list[str], extra: dict | None = None) -> Netlist:
    """A trained ``lut_model.LutNet`` to its netlist: one ``LutLayer`` per hidden LUT4 layer, then one
    gate ``Layer`` for the head.

    The format is strictly layered, but the head reads ``[x, h1, h2, ...]``: every input bit or
    hidden node that a head pin actually depends on (its table reads it) is forwarded to the last
    hidden layer by wire nodes (table ``WIRE_TABLE``, all four pins on the signal), appended after
    each layer's own nodes in the order (source layer, index). A head pin its table ignores reads
    the node's other pin's signal (a constant node reads the last hidden layer's node 0)."""
    import numpy as np

    from logicforge.netlist.format import LutLayer
    from logicforge.netlist.gates import TRUTH
    from logicforge.train.lut_model import pins_used

    hidden = list(model.layers)
    sizes = [model.in_bits] + [l.n for l in hidden]
    offsets = np.cumsum([0] + sizes)  # signal s of level L is concat index offsets[L] + s

    head_tables = model.head.tables().cpu().numpy()
    head_in = model.head.wiring().cpu().numpy()  # (N, 2) concat indices
    used = pins_used(model.head.tables(), model.head.k).numpy()
    for n in range(len(head_tables)):  # an ignored pin reads what the other reads (same function)
        for i in range(2):
            if not used[n, i]:
                head_in[n, i] = head_in[n, 1 - i] if used[n, 1 - i] else offsets[-2]  # last layer's node 0
    level = np.searchsorted(offsets, head_in, side="right") - 1  # level of each head source
    last = len(hidden)
    needed = sorted({(int(lv), int(c - offsets[lv])) for lv, c in zip(level[used], head_in[used]) if lv < last})

    layers = []
    position = {}  # (level, index) -> position in the layer just built
    for L, layer in enumerate(hidden, start=1):
        ins = layer.wiring().cpu().numpy()  # reads level L - 1 directly
        tables = list(layer.tables().cpu().numpy())
        ins = [list(r) for r in ins]
        new_pos = {}
        for lv, s in needed:
            if lv >= L:
                continue
            src = s if lv == L - 1 else position[(lv, s)]
            new_pos[(lv, s)] = layer.n + len(new_pos)
            tables.append(WIRE_TABLE)
            ins.append([src] * 4)
        position = new_pos
        layers.append(LutLayer(np.array(tables, dtype=np.int64), np.array(ins, dtype=np.int64)))

    def pos(c: int) -> int:
        lv = int(np.searchsorted(offsets, c, side="right") - 1)
        s = int(c - offsets[lv])
        return s if lv == last else position[(lv, s)]

    ops, a, b = [], [], []
    for n, t in enumerate(head_tables):
        want = np.array([[(t >> (x + 2 * y)) & 1 for y in (0, 1)] for x in (0, 1)])  # [a, b]
        ops.append(int(np.flatnonzero((TRUTH == want).all(axis=(1, 2)))[0]))
        ia, ib = int(head_in[n, 0]), int(head_in[n, 1])
        a.append(pos(ia))
        b.append(pos(ib))
    layers.append(Layer(np.array(ops), np.array(a), np.array(b)))
    return Netlist(features, feature_width, thresholds, layers, list(class_names), model.group_size,
                   float(model.tau), dict(extra or {})).validate()
