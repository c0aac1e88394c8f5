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
    - ``mode="hard_st"``: in training, the most likely gate forward (no noise), the gradient of
      ``softmax(logits / temperature)`` backward.
    - ``mode="cage"``: as ``hard_st`` with a per-neuron backward temperature
      (``functional.cage_temperature``).
    - ``mode="softmax"``: in training, the expectation under ``softmax(logits)`` (difflogic).
    - In eval mode all use the most likely gate, which is what the netlist exports.
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
                binary: bool = False, cage_margin: float = 2.0) -> torch.Tensor:
        """``x``: [in_dim, batch] -> [out_dim, batch]. ``noise``: Gumbel samples [out_dim, 16]."""
        coef = self.coefficients(noise, temperature, F.pick_backend(x, self.backend), cage_margin)
        binary = binary and not (self.training and self.mode == "softmax")  # relaxed gates give reals
        return F.logic_layer(x, self.ia, self.ib, coef, binary=binary, backend=self.backend)

    def coefficients(self, noise: torch.Tensor | None, temperature: float, backend: str,
                     cage_margin: float = 2.0) -> torch.Tensor:
        """This forward pass's gate coefficients [out_dim, 4] (see ``functional.layer_coefficients``)."""
        return F.layer_coefficients(self.logits, self.coeffs, self.mode, self.training, backend, noise=noise,
                                    temperature=temperature, cage_margin=cage_margin)

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
        self.temperature = 1.0  # backward softmax temperature of gumbel, hard_st and cage
        self.cage_margin = 2.0

    def forward(self, x: torch.Tensor, noise_seed: int | None = None) -> torch.Tensor:
        """``x``: [batch, in_bits] of 0/1 -> [batch, classes] scores.

        With ``noise_seed`` the Gumbel samples are a function of the seed (``functional.layer_noise``,
        identical on every rank); without it they come from the global generator. In gumbel training on
        the C++ backend (and likewise for hard_st and cage, whose forward gates are hard too) the whole
        network runs on packed bits (``functional.GumbelNetFunction``).
        """
        sampling = self.training and self.mode == "gumbel"
        noises = F.layer_noise(self.layers, noise_seed) if sampling else [None] * len(self.layers)
        hard = self.training and self.mode in F.HARD_FORWARD  # every activation stays a bit
        if hard and x.dim() == 2 and x.dtype == torch.float32 and all(F.pick_backend(x, l.backend) == "cpp" for l in self.layers):
            # Bits in, bits out: the whole network in one C++ call each way (same result as below).
            coefs = [l.coefficients(n, self.temperature, "cpp", self.cage_margin) for l, n in zip(self.layers, noises)]
            return F.GumbelNetFunction.apply(x.contiguous(), [l.ia for l in self.layers], [l.ib for l in self.layers],
                                             self.head.classes, self.head.tau, *coefs)
        h = x.t().contiguous()
        for layer, noise in zip(self.layers, noises):
            h = layer(h, noise=noise, temperature=self.temperature, binary=True, cage_margin=self.cage_margin)
        return self.head(h)
