"""The logic gate network as ordinary ``torch.nn.Module``s: one layer class and one group-sum.

Activations are neuron-major, ``[features, batch]``; ``LogicNet`` takes and returns batch-major
tensors so it can be used like any classifier.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from logicforge.netlist import gates
from logicforge.train import functional as F


class LogicLayer(nn.Module):
    """``out_dim`` gates, each one of the 16 two-input functions of two fixed input rows.

    - ``mode="gumbel"``: in training, each forward samples one gate per neuron (shared by the batch)
      from ``softmax((logits + Gumbel) / temperature)``; the forward pass uses that gate, the backward
      pass the soft probabilities (straight-through). Binary inputs give binary outputs.
    - ``mode="softmax"``: in training, the expectation under ``softmax(logits)`` (difflogic).
    - In eval mode both use the most likely gate, which is what the netlist exports.
    """

    def __init__(self, in_dim: int, out_dim: int, *, mode: str = "gumbel", init: str = "residual",
                 residual_logit: float = 5.0, connections: str = "unique",
                 generator: torch.Generator | None = None, backend: str = "auto"):
        super().__init__()
        self.in_dim, self.out_dim, self.mode, self.backend = in_dim, out_dim, mode, backend
        if init == "gaussian":
            logits = torch.randn(out_dim, gates.NUM_OPS, generator=generator)
        elif init == "residual":
            logits = torch.zeros(out_dim, gates.NUM_OPS)
            logits[:, gates.A] = residual_logit
        else:
            raise ValueError(f"unknown init {init!r}")
        self.logits = nn.Parameter(logits)
        ia, ib = _connections(in_dim, out_dim, connections, generator)
        self.register_buffer("ia", ia)
        self.register_buffer("ib", ib)
        self.register_buffer("coeffs", F.coeff_matrix())

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None, temperature: float = 1.0,
                binary: bool = False) -> torch.Tensor:
        """``x``: [in_dim, batch] -> [out_dim, batch]. ``noise``: Gumbel samples [out_dim, 16]."""
        if self.training and self.mode == "gumbel":
            if noise is None:
                noise = F.gumbel_noise(self.logits.shape, device=self.logits.device)
            coef = F.GumbelCoefficients.apply(self.logits, noise, temperature, self.coeffs)
        else:
            coef = F.layer_weights(self.logits, self.mode, self.training) @ self.coeffs
        binary = binary and not (self.training and self.mode == "softmax")  # relaxed gates give reals
        return F.logic_layer(x, self.ia, self.ib, coef, binary=binary, backend=self.backend)

    def ops(self) -> torch.Tensor:
        """The discrete gate of every neuron (argmax of its logits)."""
        return self.logits.argmax(dim=-1)

    def extra_repr(self) -> str:
        return f"{self.in_dim} -> {self.out_dim}, mode={self.mode}"


def _connections(in_dim, out_dim, kind, generator):
    if kind == "random":
        return (torch.randint(0, in_dim, (out_dim,), generator=generator),
                torch.randint(0, in_dim, (out_dim,), generator=generator))
    if kind == "unique":
        # Concatenated random permutations: every input is used once before any is used twice.
        reps = math.ceil(2 * out_dim / in_dim)
        idx = torch.cat([torch.randperm(in_dim, generator=generator) for _ in range(reps)])[: 2 * out_dim]
        return idx[:out_dim].clone(), idx[out_dim:].clone()
    raise ValueError(f"unknown connections {kind!r}")


class GroupSum(nn.Module):
    """[classes * group, batch] -> [batch, classes]: the sum of each class's group, divided by tau."""

    def __init__(self, classes: int, tau: float):
        super().__init__()
        self.classes, self.tau = classes, tau

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return y.view(self.classes, y.shape[0] // self.classes, y.shape[-1]).sum(dim=1).t() / self.tau


class LogicNet(nn.Module):
    """Thermometer bits in, class scores out: ``layers`` logic layers and a ``GroupSum``.

    ``widths`` (optional) gives each hidden layer's width and replaces ``layers``/``width``.
    """

    def __init__(self, in_bits: int, classes: int, *, layers: int, width: int, group_size: int, tau: float,
                 mode: str = "gumbel", seed: int = 0, widths: list[int] | None = None, **layer_kw):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        hidden = list(widths) if widths else [width] * (layers - 1)
        dims = [in_bits] + hidden + [classes * group_size]
        self.layers = nn.ModuleList(
            LogicLayer(i, o, mode=mode, generator=g, **layer_kw) for i, o in zip(dims[:-1], dims[1:]))
        self.head = GroupSum(classes, tau)
        self.mode = mode
        self.temperature = 1.0

    def forward(self, x: torch.Tensor, noise_seed: int | None = None) -> torch.Tensor:
        """``x``: [batch, in_bits] of 0/1 -> [batch, classes] scores.

        With ``noise_seed`` the Gumbel samples are a function of the seed and the device type
        (identical on every rank); without it they come from the global generator.
        """
        h = x.t().contiguous()
        sampling = self.training and self.mode == "gumbel"
        noises = F.layer_noise(self.layers, noise_seed) if sampling else [None] * len(self.layers)
        for layer, noise in zip(self.layers, noises):
            h = layer(h, noise=noise, temperature=self.temperature, binary=True)
        return self.head(h)
