"""Hutchinson's estimator of the Hessian trace of the loss with respect to the gate logits.

The "Mind the Gap" paper explains Gumbel noise as an implicit regulariser of the Hessian trace of the
loss (about ``pi^2 / (12 tau^2) * tr(H)``). We measure ``tr(H)`` of the relaxed (softmax) network's
cross-entropy on a fixed batch, at the logits a run has reached, whatever estimator trained it: the
same function for every estimator, so the traces are comparable.

The fused logic-layer kernels (``functional.LogicLayerFunction``) have no double backward, so this
measurement uses the straightforward differentiable formulation: per layer ``coef = softmax(logits)
@ COEFFS`` and ``functional.forward_torch`` (plain PyTorch ops, differentiable twice).

``tr(H) = E[v^T H v]`` for Rademacher ``v`` (entries +-1); ``H v`` is a Hessian-vector product by
double backward. The estimate is the mean over ``probes`` draws, with its standard error.
"""

from __future__ import annotations

import math

import torch

from logicforge.train import functional as F


def relaxed_loss(model, x: torch.Tensor, y: torch.Tensor, logits: list[torch.Tensor] | None = None) -> torch.Tensor:
    """Mean cross-entropy of the softmax-relaxed ``model`` (a ``LogicNet``) on batch-major ``x``.

    ``logits`` replaces the layers' logits (for functional use); default: the model's parameters.
    """
    params = logits if logits is not None else [layer.logits for layer in model.layers]
    h = x.t().contiguous()
    for layer, lg in zip(model.layers, params):
        coef = torch.softmax(lg, dim=-1) @ layer.coeffs
        h = F.forward_torch(h, layer.ia, layer.ib, coef)
    return torch.nn.functional.cross_entropy(model.head(h), y)


def hutchinson_trace(loss_fn, params: list[torch.Tensor], probes: int, seed: int = 0) -> dict:
    """Estimate ``tr(d^2 loss / d params^2)`` with ``probes`` Rademacher vectors.

    ``loss_fn(params) -> scalar``. Returns ``{"trace", "stderr", "probes"}``.
    """
    params = [p.detach().clone().requires_grad_(True) for p in params]
    loss = loss_fn(params)
    grads = torch.autograd.grad(loss, params, create_graph=True)
    gen = torch.Generator().manual_seed(seed)
    samples = []
    for k in range(probes):
        vs = [(torch.randint(0, 2, p.shape, generator=gen) * 2 - 1).to(p.dtype).to(p.device) for p in params]
        hvs = torch.autograd.grad(grads, params, grad_outputs=vs, retain_graph=k < probes - 1)
        samples.append(float(sum((v * hv).sum() for v, hv in zip(vs, hvs))))
    mean = sum(samples) / probes
    var = sum((s - mean) ** 2 for s in samples) / max(1, probes - 1)
    return {"trace": mean, "stderr": math.sqrt(var / probes), "probes": probes}


def model_trace(model, x: torch.Tensor, y: torch.Tensor, probes: int, seed: int = 0) -> dict:
    """Hutchinson estimate of the relaxed loss's Hessian trace at ``model``'s logits on (x, y)."""
    params = [layer.logits for layer in model.layers]
    return hutchinson_trace(lambda ps: relaxed_loss(model, x, y, ps), params, probes, seed)


def exact_trace(loss_fn, params: list[torch.Tensor]) -> tuple[float, torch.Tensor]:
    """The exact trace and full Hessian (flattened parameters) for small problems (tests)."""
    shapes = [p.shape for p in params]
    sizes = [p.numel() for p in params]
    flat0 = torch.cat([p.detach().reshape(-1) for p in params])

    def f(flat):
        parts, i = [], 0
        for shape, n in zip(shapes, sizes):
            parts.append(flat[i:i + n].view(shape))
            i += n
        return loss_fn(parts)

    h = torch.autograd.functional.hessian(f, flat0)
    return float(torch.diagonal(h).sum()), h
