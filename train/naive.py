"""The straightforward formulation of a logic gate network, as difflogic's paper writes it.

This is the yardstick for ``train.model`` / ``train.functional``: same parameters, same Gumbel samples,
same loss to float tolerance, but computed the obvious (slow, memory-hungry) way:

- activations are batch-major, ``[batch, features]``;
- each layer gathers both inputs, ``a = x[:, ia]`` and ``b = x[:, ib]`` (``[batch, N]``);
- it evaluates **all 16 relaxed gates** for every sample and gate, a ``[batch, N, 16]`` tensor, with
  ``op_i(a, b) = c0 + c1*a + c2*b + c3*a*b`` and ``(c0..c3) = gates.COEFFS[i]`` (the single definition
  of the gates; no second truth table);
- and mixes them with the gate weights ``[N, 16]`` of ``functional.gate_weights``: ``softmax(logits)``
  in softmax mode, the straight-through Gumbel one-hot in gumbel mode, the argmax one-hot in eval mode.

``NaiveLogicNet`` has the same state_dict layout as ``LogicNet`` (``layers.<i>.logits``, ``.ia``,
``.ib``, ``.coeffs``), builds the same initial parameters for the same arguments, and draws the Gumbel
noise exactly as ``LogicNet.forward`` does, so ``naive.load_state_dict(net.state_dict())`` and equal
``noise_seed`` give the same forward pass.
"""

from __future__ import annotations

import torch
from torch import nn

from logicforge.netlist import gates
from logicforge.train import functional as F
from logicforge.train.model import LogicNet


class NaiveLogicLayer(nn.Module):
    """``out_dim`` gates over a batch-major input ``[batch, in_dim]``; parameters as ``LogicLayer``."""

    def __init__(self, in_dim: int, out_dim: int, *, mode: str = "gumbel"):
        super().__init__()
        self.in_dim, self.out_dim, self.mode = in_dim, out_dim, mode
        self.logits = nn.Parameter(torch.zeros(out_dim, gates.NUM_OPS))
        self.register_buffer("ia", torch.zeros(out_dim, dtype=torch.int64))
        self.register_buffer("ib", torch.zeros(out_dim, dtype=torch.int64))
        self.register_buffer("coeffs", F.coeff_matrix())

    def all_gates(self, x: torch.Tensor) -> torch.Tensor:
        """The 16 relaxed gates of every neuron on every sample: ``[batch, out_dim, 16]``.

        ``op_i(a, b) = c0 + c1*a + c2*b + c3*a*b`` for all i at once: the basis ``(1, a, b, ab)``
        ``[batch, N, 4]`` times ``COEFFS.T`` ``[4, 16]`` (one matmul; the cheapest way we found to
        materialise the 16 ops, so the baseline is not slowed by needless temporaries).
        """
        a, b = x[:, self.ia], x[:, self.ib]  # [batch, N]
        basis = torch.stack([torch.ones_like(a), a, b, a * b], dim=-1)
        return basis @ self.coeffs.t()

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None,
                temperature: float = 1.0, cage_margin: float = 2.0) -> torch.Tensor:
        """``x``: [batch, in_dim] -> [batch, out_dim]. ``noise``: Gumbel samples [out_dim, 16]."""
        w = F.layer_weights(self.logits, self.mode, self.training, noise=noise, temperature=temperature,
                            cage_margin=cage_margin)
        return (self.all_gates(x) * w).sum(dim=-1)


class NaiveLogicNet(nn.Module):
    """Batch-major twin of ``LogicNet``: same constructor, state_dict layout, noise and outputs."""

    def __init__(self, in_bits: int, classes: int, *, layers: int, width: int, group_size: int, tau: float,
                 mode: str = "gumbel", seed: int = 0, **layer_kw):
        super().__init__()
        dims = [in_bits] + [width] * (layers - 1) + [classes * group_size]
        self.layers = nn.ModuleList(NaiveLogicLayer(i, o, mode=mode) for i, o in zip(dims[:-1], dims[1:]))
        self.classes, self.group_size, self.tau = classes, group_size, tau
        self.mode = mode
        self.temperature = 1.0
        self.cage_margin = 2.0
        # The same initial logits and connections as LogicNet for the same arguments.
        layer_kw.pop("backend", None)
        twin = LogicNet(in_bits, classes, layers=layers, width=width, group_size=group_size, tau=tau,
                        mode=mode, seed=seed, **layer_kw)
        self.load_state_dict(twin.state_dict())

    @classmethod
    def like(cls, net: LogicNet) -> "NaiveLogicNet":
        """A naive network with ``net``'s current parameters, mode and temperature."""
        first, last = net.layers[0], net.layers[-1]
        head = net.head
        naive = cls(first.in_dim, head.classes, layers=len(net.layers), width=first.out_dim,
                    group_size=last.out_dim // head.classes, tau=head.tau, mode=net.mode)
        naive.load_state_dict(net.state_dict())
        naive.temperature = net.temperature
        naive.cage_margin = net.cage_margin
        return naive.to(first.logits.device)

    def forward(self, x: torch.Tensor, noise_seed: int | None = None) -> torch.Tensor:
        """``x``: [batch, in_bits] -> [batch, classes]; Gumbel noise drawn exactly as ``LogicNet`` draws it."""
        h = x
        sampling = self.training and self.mode == "gumbel"
        noises = F.layer_noise(self.layers, noise_seed) if sampling else [None] * len(self.layers)
        for layer, noise in zip(self.layers, noises):
            h = layer(h, noise=noise, temperature=self.temperature, cage_margin=self.cage_margin)
        return h.view(h.shape[0], self.classes, self.group_size).sum(dim=-1) / self.tau
