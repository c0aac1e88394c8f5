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
