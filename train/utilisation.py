"""Gate utilisation under several definitions: one implementation, used by the trainer's per-epoch
metrics and by the experiment report (docs/training.md, "Utilisation").

- ``constant_fraction``: gates whose discrete op ignores both inputs (FALSE, TRUE): the op's
  coefficients on a, b and ab (``netlist.gates.COEFFS``) are all zero.
- ``unused_fraction``: gates with no path to a class output, by the dead-gate pass's liveness
  (``netlist.analysis.unused_gate_fraction``); a constant gate's inputs are dead, for example.
- ``uncollapsed_fraction``: neurons whose distribution over the 16 ops has not collapsed: the
  largest probability of ``softmax(logits)`` is below ``COLLAPSE_THRESHOLD`` (0.5). This is the
  distribution the Gumbel-max trick samples from, whatever the backward temperature.
- ``op_histogram_per_layer``: per layer, the count of each of the 16 discrete ops (index = op id).
"""

from __future__ import annotations

import numpy as np
import torch

from logicforge.netlist import analysis, gates

COLLAPSE_THRESHOLD = 0.5


def constant_ops() -> np.ndarray:
    """Boolean [16]: the ops that ignore both inputs."""
    c = np.asarray(gates.COEFFS, dtype=np.float64)
    return np.all(c[:, 1:] == 0, axis=1)


def utilisation(layer_logits: list[torch.Tensor], net) -> dict:
    """The four utilisation measures of a network given its layers' logits [N, 16] and its netlist."""
    const = constant_ops()
    total = sum(int(lg.shape[0]) for lg in layer_logits)
    hist, n_const, n_uncollapsed = [], 0, 0
    for lg in layer_logits:
        lg = lg.detach().float().cpu()
        ops = lg.argmax(dim=-1).numpy()
        counts = np.bincount(ops, minlength=gates.NUM_OPS)
        hist.append([int(c) for c in counts])
        n_const += int(counts[const].sum())
        n_uncollapsed += int((torch.softmax(lg, dim=-1).max(dim=-1).values < COLLAPSE_THRESHOLD).sum())
    return {
        "constant_fraction": n_const / total,
        "unused_fraction": analysis.unused_gate_fraction(net),
        "uncollapsed_fraction": n_uncollapsed / total,
        "op_histogram_per_layer": hist,
    }


#: Keys of ``utilisation`` that are fractions of all gates (the report plots each over training).
FRACTIONS = ("constant_fraction", "unused_fraction", "uncollapsed_fraction")
