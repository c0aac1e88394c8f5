"""Knowledge distillation from a trained netlist (config block ``distill``).

The teacher is any logicforge netlist (a run directory holding ``netlist.json``, or the file itself),
typically a large network that does not fit the target device. Its class logits on the training
samples, ``popcount / tau`` of each class group, are computed once with the bit-packed reference
evaluator (so the targets are exactly the teacher's discrete function) and kept as a (samples,
classes) float tensor. The student's loss is then

    (1 - weight) * CE(student, label) + weight * T^2 * CE(softmax(teacher / T), softmax(student / T))

with ``T = temperature`` (Hinton et al.'s soft-target loss; the cross-entropy with soft targets has
the gradient of the KL divergence, and T^2 keeps the gradient scale independent of T).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from logicforge.errors import LogicforgeError
from logicforge.netlist import format as nf
from logicforge.netlist import reference


def load_teacher(path: str | Path, *, features: int, feature_width: int, classes: int) -> nf.Netlist:
    """The teacher netlist at ``path`` (a run directory or a netlist file), checked against the
    student's dataset; LogicforgeError (one line) when it is missing or does not match."""
    p = Path(path)
    if p.is_dir():
        p = p / "netlist.json"
        if not p.is_file():
            raise LogicforgeError(f"distill.teacher: {path}: the directory holds no netlist.json")
    elif not p.is_file():
        raise LogicforgeError(f"distill.teacher: {path}: no such run directory or netlist file")
    net = nf.load(p)
    if (net.features, net.feature_width, net.classes) != (features, feature_width, classes):
        raise LogicforgeError(
            f"distill.teacher: {p}: the teacher reads {net.features} features of {net.feature_width} bits "
            f"into {net.classes} classes, the dataset has {features} of {feature_width} bits and {classes} classes")
    return net


def teacher_logits(net: nf.Netlist, x: np.ndarray, chunk: int = 4096) -> torch.Tensor:
    """(samples, classes) float32: the teacher's group popcounts divided by its tau, by the reference
    evaluator, ``chunk`` samples at a time (bounded memory for large teachers)."""
    out = np.empty((len(x), net.classes), dtype=np.float32)
    for start in range(0, len(x), chunk):
        scores, _ = reference.evaluate(net, x[start:start + chunk])
        out[start:start + chunk] = scores / net.tau
    return torch.from_numpy(out)


def loss(scores: torch.Tensor, y: torch.Tensor, teacher: torch.Tensor, weight: float,
         temperature: float) -> torch.Tensor:
    """The distillation loss, summed over the batch (the caller scales it, as for the plain loss)."""
    hard = torch.nn.functional.cross_entropy(scores, y, reduction="sum")
    if weight == 0.0:
        return hard
    target = torch.softmax(teacher / temperature, dim=1)
    soft = -(target * torch.log_softmax(scores / temperature, dim=1)).sum() * temperature ** 2
    return (1.0 - weight) * hard + weight * soft
