"""The logic layer's math, with one fused autograd function and a kernel chosen per device.

Layout is neuron-major: activations are ``[features, batch]``. A layer of N gates reads rows
``ia[n]`` and ``ib[n]`` of its input. Every relaxed two-input gate is linear in {1, a, b, ab}
(``netlist.gates.COEFFS``), so a layer is fully described by per-gate coefficients ``coef[N, 4]``::

    y[n] = c0[n] + c1[n] * a + c2[n] * b + c3[n] * a * b,   a = x[ia[n]], b = x[ib[n]]

Backward, with g = dL/dy[n]::

    dL/dcoef[n] = (sum g, sum g*a, sum g*b, sum g*a*b)       (sums over the batch)
    dL/dx[ia[n]] += g * (c1[n] + c3[n] * b)
    dL/dx[ib[n]] += g * (c2[n] + c3[n] * a)

In ``gumbel`` mode the coefficients are those of one sampled gate (straight-through one-hot), so
with binary inputs every activation is exactly 0 or 1; the function then saves its input as packed
bits (32x smaller than float32).
"""

from __future__ import annotations

import torch

from logicforge.netlist import gates

_COEFFS = torch.tensor(gates.COEFFS, dtype=torch.float32)  # [16, 4]


def coeff_matrix(device=None, dtype=torch.float32) -> torch.Tensor:
    """The fixed [16, 4] map from gate weights to {1, a, b, ab} coefficients."""
    return _COEFFS.to(device=device, dtype=dtype)


def gumbel_noise(shape, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """Standard Gumbel(0, 1) samples on ``device`` (from ``generator``, else the global generator)."""
    u = torch.rand(shape, generator=generator, dtype=torch.float32, device=device)
    u = u.clamp_(min=torch.finfo(torch.float32).tiny, max=1.0 - 1e-7)
    return -torch.log(-torch.log(u))


_M32, _M64 = 0xFFFFFFFF, (1 << 64) - 1


def noise_key(seed: int, layer: int) -> tuple[int, int]:
    """The two 32-bit keys of layer ``layer``'s Gumbel noise at ``seed`` (a splitmix64 finaliser)."""
    z = (seed * 0x9E3779B97F4A7C15 + (layer + 1) * 0xD1B54A32D192ED03) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    z ^= z >> 31
    return z & _M32, z >> 32


def _mul32(x: torch.Tensor, c: int) -> torch.Tensor:
    """(x * c) mod 2^32 for int64 x in [0, 2^32), without int64 overflow."""
    return (x * (c & 0xFFFF) + (((x * (c >> 16)) & 0xFFFF) << 16)) & _M32


def _fmix32(x: torch.Tensor) -> torch.Tensor:
    """MurmurHash3's 32-bit finaliser (a bijection of [0, 2^32)) on int64 tensors."""
    x = x ^ (x >> 16)
    x = _mul32(x, 0x85EBCA6B)
    x = x ^ (x >> 13)
    x = _mul32(x, 0xC2B2AE35)
    return x ^ (x >> 16)


def hashed_gumbel(rows: int, key: tuple[int, int], device=None) -> torch.Tensor:
    """Standard Gumbel samples [rows, 16] from a counter-based hash: the definition of the seeded noise.

    Element i (row-major) takes h = fmix32(fmix32(i ^ k1) + k2), a uniform u = ((h >> 9) + 0.5) * 2^-23
    (23 bits, strictly inside (0, 1) and exact in float32) and g = -log(-log(u)). Any element can be
    drawn on its own, on any device, and in any order. The C++ kernel (``cpu_kernel.gumbel_noise``)
    draws the same uniforms; its vector ``log`` may round the last bit differently (about 1e-7).
    """
    k1, k2 = key
    i = torch.arange(rows * gates.NUM_OPS, dtype=torch.int64, device=device)
    h = _fmix32((_fmix32(i ^ k1) + k2) & _M32)
    u = ((h >> 9).to(torch.float32) + 0.5) * 2.0 ** -23
    return (-torch.log(-torch.log(u))).view(rows, gates.NUM_OPS)


def layer_noise(layers, noise_seed: int | None):
    """Per layer, the Gumbel samples [out_dim, 16] for one training step.

    With a seed, layer ``l`` draws ``hashed_gumbel`` with ``noise_key(seed, l)``: a function of the
    seed alone, identical on every rank of a distributed run and on a resume (up to the rounding of
    ``log`` on another device or kernel). On the CPU the C++ kernel draws them where it is built.
    Without a seed they come from the global generator.
    """
    device = layers[0].logits.device
    if noise_seed is None:
        return [gumbel_noise(layer.logits.shape, device=device) for layer in layers]
    keys = [noise_key(noise_seed, i) for i in range(len(layers))]
    if device.type == "cpu":  # every backend: the C++ draw is much cheaper than the torch ops below
        from logicforge.train import cpu_kernel

        if cpu_kernel.available():
            return [cpu_kernel.gumbel_noise(layer.logits.shape[0], *k) for layer, k in zip(layers, keys)]
    return [hashed_gumbel(layer.logits.shape[0], k, device=device) for layer, k in zip(layers, keys)]


#: The training estimators, one per ``mode`` of the config (docs/training.md, "Estimators").
ESTIMATORS = ("softmax", "gumbel", "hard_st", "cage")
#: Estimators whose forward pass uses one hard gate per neuron (binary activations, zero gap).
HARD_FORWARD = ("gumbel", "hard_st", "cage")


def cage_temperature(logits: torch.Tensor, temperature: float, margin: float) -> torch.Tensor:
    """Per-neuron backward temperature of the ``cage`` estimator, [N, 1], no gradient.

    Our reading of CAGE (confidence-adaptive gradient estimation): the forward pass is the hard
    argmax gate, and the backward softmax's temperature rises with the neuron's confidence so that
    a confident neuron keeps a usable gradient. Confidence is the logit margin between the best and
    the second-best gate, ``m = z1 - z2``; the temperature is ``temperature * max(1, m / margin)``,
    so the backward softmax never sees a top-two margin above ``margin`` (its top probability stays
    below ``1 / (1 + exp(-margin))`` of the top two's mass).
    """
    top2 = logits.detach().topk(2, dim=-1).values
    gap = top2[:, :1] - top2[:, 1:]
    return temperature * torch.clamp(gap / margin, min=1.0)


def gate_weights(logits: torch.Tensor, mode: str, *, noise: torch.Tensor | None = None,
                 temperature: float = 1.0, cage_margin: float = 2.0) -> torch.Tensor:
    """Per-gate weights over the 16 ops, [N, 16].

    - ``"gumbel"``: the one-hot of ``argmax(logits + noise)`` in the forward pass; gradients flow
      through ``softmax((logits + noise) / temperature)`` (straight-through).
    - ``"hard_st"``: the one-hot of ``argmax(logits)`` forward (no noise); gradients through
      ``softmax(logits / temperature)``.
    - ``"cage"``: as ``hard_st`` with the per-neuron temperature of ``cage_temperature``.
    - ``"softmax"``: ``softmax(logits)`` (difflogic's relaxation).
    - ``"discrete"``: the one-hot of ``argmax(logits)``, no gradient.
    """
    if mode in HARD_FORWARD:
        if mode == "gumbel":
            z = logits + noise
        else:
            z = logits
        if mode == "cage":
            temperature = cage_temperature(logits, temperature, cage_margin)
        soft = torch.softmax(z / temperature, dim=-1)
        hard = torch.nn.functional.one_hot(z.argmax(dim=-1), gates.NUM_OPS).to(soft.dtype)
        return hard - soft.detach() + soft
    if mode == "softmax":
        return torch.softmax(logits, dim=-1)
    if mode == "discrete":
        return torch.nn.functional.one_hot(logits.argmax(dim=-1), gates.NUM_OPS).to(logits.dtype)
    raise ValueError(f"unknown mode {mode!r}")


class GumbelCoefficients(torch.autograd.Function):
    """The straight-through hard gate as {1, a, b, ab} coefficients, in one step.

    Forward: ``COEFFS[argmax(logits + noise)]``, exactly the chosen gate's coefficients.
    Backward: the gradient of ``softmax((logits + noise) / temperature) @ COEFFS``. This is the
    same estimator as ``gate_weights(..., "gumbel") @ COEFFS`` without its [N, 16] one-hot and
    straight-through arithmetic (and without its rounding: the forward coefficients are exact).
    ``noise=None`` is the noise-free ``hard_st``; a [N, 1] ``temperature`` tensor is ``cage``'s
    per-neuron temperature.
    """

    @staticmethod
    def forward(ctx, logits, noise, temperature, coeffs):
        z = logits if noise is None else logits + noise
        soft = torch.softmax(z / temperature, dim=-1)
        ctx.save_for_backward(soft, coeffs)
        ctx.temperature = temperature
        return coeffs[z.argmax(dim=-1)]

    @staticmethod
    def backward(ctx, grad_coef):
        soft, coeffs = ctx.saved_tensors
        gw = grad_coef @ coeffs.t()  # dL/d(gate weights), [N, 16]
        grad_logits = soft * (gw - (soft * gw).sum(dim=-1, keepdim=True)) / ctx.temperature
        return grad_logits, None, None, None


def hard_coefficients(logits: torch.Tensor, mode: str, coeffs: torch.Tensor, *, noise: torch.Tensor | None = None,
                      temperature: float = 1.0, cage_margin: float = 2.0) -> torch.Tensor:
    """The fused form of a hard-forward estimator (``gumbel``, ``hard_st``, ``cage``): [N, 4]
    coefficients, equal in value and gradient to ``gate_weights(logits, mode, ...) @ coeffs``."""
    if mode == "gumbel":
        if noise is None:
            noise = gumbel_noise(logits.shape, device=logits.device)
        return GumbelCoefficients.apply(logits, noise, temperature, coeffs)
    if mode == "hard_st":
        return GumbelCoefficients.apply(logits, None, temperature, coeffs)
    if mode == "cage":
        return GumbelCoefficients.apply(logits, None, cage_temperature(logits, temperature, cage_margin), coeffs)
    raise ValueError(f"not a hard-forward estimator: {mode!r}")


def layer_weights(logits: torch.Tensor, mode: str, training: bool, *, noise: torch.Tensor | None = None,
                  temperature: float = 1.0, cage_margin: float = 2.0) -> torch.Tensor:
    """A layer's gate weights for one forward pass: the argmax gate outside training; in training
    those of ``mode``, drawing fresh Gumbel noise when ``gumbel`` is given none."""
    if not training:
        return gate_weights(logits, "discrete")
    if mode == "gumbel" and noise is None:
        noise = gumbel_noise(logits.shape, device=logits.device)
    return gate_weights(logits, mode, noise=noise, temperature=temperature, cage_margin=cage_margin)


class CppGumbelCoefficients(torch.autograd.Function):
    """``GumbelCoefficients`` in two C++ calls (noise add, argmax, softmax and the gather fused)."""

    @staticmethod
    def forward(ctx, logits, noise, temperature, coeffs):
        from logicforge.train import cpu_kernel

        coef, soft = cpu_kernel.gumbel_coef(logits, noise, temperature, coeffs)
        ctx.save_for_backward(soft, coeffs)
        ctx.temperature = temperature
        return coef

    @staticmethod
    def backward(ctx, grad_coef):
        from logicforge.train import cpu_kernel

        soft, coeffs = ctx.saved_tensors
        return cpu_kernel.coef_backward(grad_coef, soft, ctx.temperature, coeffs), None, None, None


class CppSoftmaxCoefficients(torch.autograd.Function):
    """``softmax(logits) @ coeffs`` and its gradient, each in one C++ call."""

    @staticmethod
    def forward(ctx, logits, coeffs):
        from logicforge.train import cpu_kernel

        coef, soft = cpu_kernel.softmax_coef(logits, coeffs)
        ctx.save_for_backward(soft, coeffs)
        return coef

    @staticmethod
    def backward(ctx, grad_coef):
        from logicforge.train import cpu_kernel

        soft, coeffs = ctx.saved_tensors
        return cpu_kernel.coef_backward(grad_coef, soft, 1.0, coeffs), None


def layer_coefficients(logits: torch.Tensor, coeffs: torch.Tensor, mode: str, training: bool, backend: str, *,
                       noise: torch.Tensor | None = None, temperature: float = 1.0,
                       cage_margin: float = 2.0) -> torch.Tensor:
    """A layer's {1, a, b, ab} coefficients [N, 4] for one forward pass (see ``layer_weights``);
    fused C++ kernels where ``backend`` is ``cpp``."""
    if training and mode == "gumbel":
        if noise is None:
            noise = gumbel_noise(logits.shape, device=logits.device)
        fn = CppGumbelCoefficients if backend == "cpp" else GumbelCoefficients
        return fn.apply(logits, noise, temperature, coeffs)
    if training and mode in HARD_FORWARD:
        return hard_coefficients(logits, mode, coeffs, temperature=temperature, cage_margin=cage_margin)
    if training and mode == "softmax" and backend == "cpp":
        return CppSoftmaxCoefficients.apply(logits, coeffs)
    return layer_weights(logits, mode, training) @ coeffs


class GumbelNetFunction(torch.autograd.Function):
    """A whole gumbel-mode network and its group sum in one C++ call each way (CPU, 0/1 inputs).

    Forward: ``x`` [B, in] is packed to bits once; every layer maps bits to bits with its sampled
    gate; the last layer's bits are counted per class group, divided by ``tau``: scores [B, classes],
    the same as ``GroupSum`` of the per-layer path. The packed input of every layer is saved.
    Backward: dL/dcoef of every layer (``LogicLayerFunction``'s math on the saved bits).
    """

    @staticmethod
    def forward(ctx, x, ia, ib, classes, tau, *coefs):
        from logicforge.train import cpu_kernel

        scores, bits = cpu_kernel.net_forward_bits(x, ia, ib, coefs, classes, tau)
        ctx.save_for_backward(*bits, *coefs)
        ctx.ia, ctx.ib, ctx.tau, ctx.batch, ctx.layers = ia, ib, tau, x.shape[0], len(coefs)
        return scores

    @staticmethod
    def backward(ctx, grad_scores):
        from logicforge.train import cpu_kernel

        saved = ctx.saved_tensors
        bits, coefs = saved[: ctx.layers], saved[ctx.layers:]
        gs = (grad_scores / ctx.tau).t().contiguous()  # GroupSum's backward, one row per class
        gcoefs = cpu_kernel.net_backward_bits(bits, ctx.ia, ctx.ib, coefs, gs, ctx.batch)
        return (None, None, None, None, None, *gcoefs)


# -- bit packing (used to save binary activations) ---------------------------------------------

_SHIFTS = torch.arange(8, dtype=torch.uint8)


def pack_bits(x: torch.Tensor) -> torch.Tensor:
    """[rows, n] of 0/1 to [rows, ceil(n/8)] uint8; element j is bit j % 8 of byte j // 8."""
    rows, n = x.shape
    pad = (-n) % 8
    b = x.to(torch.uint8)
    if pad:
        b = torch.nn.functional.pad(b, (0, pad))
    b = b.view(rows, -1, 8) << _SHIFTS.to(x.device)
    return b.sum(dim=-1, dtype=torch.uint8)


def unpack_bits(p: torch.Tensor, n: int, dtype=torch.float32) -> torch.Tensor:
    """Inverse of ``pack_bits``."""
    bits = (p.unsqueeze(-1) >> _SHIFTS.to(p.device)) & 1
    return bits.view(p.shape[0], -1)[:, :n].to(dtype)


# -- reference implementation (plain PyTorch) --------------------------------------------------

def forward_torch(x, ia, ib, coef):
    """y = c0 + c1*a + b*(c2 + c3*a) with a = x[ia], b = x[ib]: three fused multiply-adds over [N, B],
    out of place (``hessian`` differentiates it twice)."""
    a, b = x[ia], x[ib]
    c0, c1, c2, c3 = (c[:, None] for c in coef.unbind(dim=1))
    return torch.addcmul(torch.addcmul(c0, c1, a), b, torch.addcmul(c2, c3, a))


def backward_torch(x, ia, ib, coef, g, *, need_gx: bool = True):
    """(gx, gcoef) of ``forward_torch`` for the upstream gradient ``g`` [N, B]; gx is None unless
    ``need_gx``. Not differentiable itself (it reuses its temporaries in place)."""
    a, b = x[ia], x[ib]
    _, c1, c2, c3 = (c[:, None] for c in coef.unbind(dim=1))
    ga, gb = g * a, g * b
    gcoef = torch.stack([g.sum(1), ga.sum(1), gb.sum(1), (ga * b).sum(1)], dim=1)
    if not need_gx:
        return None, gcoef
    gx = torch.zeros_like(x)
    gx.index_add_(0, ia, gb.mul_(c3).addcmul_(g, c1))  # g * (c1 + c3*b)
    gx.index_add_(0, ib, ga.mul_(c3).addcmul_(g, c2))  # g * (c2 + c3*a)
    return gx, gcoef


class LogicLayerFunction(torch.autograd.Function):
    """y = coef-weighted {1, a, b, ab} of gathered rows; saves the input as bits when ``binary``."""

    @staticmethod
    def forward(ctx, x, ia, ib, coef, binary, backend):
        fwd, _ = _kernels(backend)
        y = fwd(x, ia, ib, coef)
        ctx.binary, ctx.backend, ctx.n = binary, backend, x.shape[1]
        saved = _packer(backend)[0](x) if binary else x
        ctx.save_for_backward(saved, ia, ib, coef)
        return y

    @staticmethod
    def backward(ctx, g):
        saved, ia, ib, coef = ctx.saved_tensors
        if ctx.binary and ctx.backend == "cpp":  # the C++ kernel reads the saved bits directly
            from logicforge.train import cpu_kernel

            gx, gcoef = cpu_kernel.backward_bits(saved, ctx.n, ia, ib, coef, g.contiguous(),
                                                 need_gx=ctx.needs_input_grad[0])
            return gx, None, None, gcoef, None, None
        x = _packer(ctx.backend)[1](saved, ctx.n) if ctx.binary else saved
        if ctx.backend == "cpp":
            from logicforge.train import cpu_kernel

            gx, gcoef = cpu_kernel.backward(x, ia, ib, coef, g.contiguous(), need_gx=ctx.needs_input_grad[0])
            return gx, None, None, gcoef, None, None
        if ctx.backend == "torch":
            gx, gcoef = backward_torch(x, ia, ib, coef, g.contiguous(), need_gx=ctx.needs_input_grad[0])
            return gx, None, None, gcoef, None, None
        _, bwd = _kernels(ctx.backend)
        gx, gcoef = bwd(x, ia, ib, coef, g.contiguous())
        return gx, None, None, gcoef, None, None


def _kernels(backend: str):
    if backend == "torch":
        return forward_torch, backward_torch
    if backend == "cpp":
        from logicforge.train import cpu_kernel

        return cpu_kernel.forward, cpu_kernel.backward
    if backend == "triton":
        from logicforge.train import triton_kernels

        return triton_kernels.forward, triton_kernels.backward
    raise ValueError(f"unknown backend {backend!r}")


def _packer(backend: str):
    if backend == "cpp":
        from logicforge.train import cpu_kernel

        return cpu_kernel.module().pack_bits, cpu_kernel.module().unpack_bits
    return pack_bits, unpack_bits


def pick_backend(x: torch.Tensor, requested: str = "auto") -> str:
    """The kernel for tensor ``x``: see ``backend_for``."""
    return backend_for(x.device, requested)


def backend_for(device, requested: str = "auto") -> str:
    """``auto`` picks Triton on CUDA, the C++ kernel on the CPU where it builds, else PyTorch."""
    if requested != "auto":
        return requested
    if torch.device(device).type == "cuda":
        return "triton"
    from logicforge.train import cpu_kernel

    return "cpp" if cpu_kernel.available() else "torch"


def logic_layer(x, ia, ib, coef, *, binary: bool = False, backend: str = "auto") -> torch.Tensor:
    """Apply a logic layer to neuron-major ``x`` [in, batch]; returns [N, batch]."""
    return LogicLayerFunction.apply(x.contiguous(), ia, ib, coef, binary, pick_backend(x, backend))
