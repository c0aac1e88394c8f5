"""Triton kernels for the CUDA path: the logic layer's forward/backward and packed-bit evaluation.

Training (used by ``train.functional`` when the backend is ``"triton"``; same math and layout as
``forward_torch`` / ``backward_torch``, see that module's docstring):

- ``forward(x, ia, ib, coef) -> y``: x [in_dim, B] float32, ia/ib [N] int64, coef [N, 4] float32,
  y [N, B]. One program per (BLOCK_N neurons, BLOCK_B samples) tile; rows are read along the batch,
  which is contiguous, so every load and store is coalesced.
- ``backward(x, ia, ib, coef, g, *, gx_mode=GX_MODE) -> (gx, gcoef)``:
  - ``gcoef``: one program per (neuron block, batch split) loops over its batch tiles, keeps four
    [BLOCK_N, BLOCK_B] accumulators (g, g*a, g*b, g*a*b) and reduces them once; the per-split
    partial sums are added in a fixed order, so gcoef is deterministic.
  - ``gx`` with ``gx_mode="sorted"`` (default, deterministic): the 2N (row, neuron) incidences are
    sorted by the row they add into (CSR, built on the device with torch); one program per
    (input row, batch tile) gathers its incidences and writes its row once. No atomics.
  - ``gx`` with ``gx_mode="atomic"``: fused into the gcoef kernel as float atomic adds into rows
    ``ia[n]`` and ``ib[n]`` (one pass over g; summation order, hence the last bits, vary run to run).

Packed-bit evaluation of a discrete netlist (same result as ``netlist.reference.evaluate``):

- Words are **int64 with 64 samples each**, exactly the reference's layout (sample j is bit j % 64 of
  word j // 64), so a layer's output can be compared word for word with ``reference.layer_outputs``.
- ``encode_packed(net, x) -> words [num_inputs, W]``, ``gate_layer(words, op, ia, ib) -> [N, W]``,
  ``score_packed(words, n, classes, group_size) -> (scores, classes)``,
  ``layer_outputs_packed(net, x)`` and ``evaluate_packed(net, x) -> (scores, classes)``.
- The gate kernel applies ``op`` bitwise as an OR of minterms; the per-op minterm masks are a
  [16, 4] tensor built from ``netlist.gates.TRUTH``, passed to the kernel as data.

Without a CUDA device the module switches Triton to its CPU interpreter (sets ``TRITON_INTERPRET=1``
unless the variable is already set) before it defines the kernels; the tests run that way.
"""

from __future__ import annotations

import os

import torch

if not torch.cuda.is_available():  # must happen before triton is imported
    os.environ.setdefault("TRITON_INTERPRET", "1")

import numpy as np  # noqa: E402
import triton  # noqa: E402
import triton.language as tl  # noqa: E402

from logicforge.errors import LogicforgeError  # noqa: E402
from logicforge.netlist import gates  # noqa: E402

#: Default input-gradient scheme: "sorted" (deterministic) or "atomic" (one fused pass).
GX_MODE = os.environ.get("LOGICFORGE_TRITON_GX", "sorted")

# Tile sizes (powers of two). The batch axis is the contiguous one.
FWD_BLOCK_N = 32
FWD_BLOCK_B = 128
BWD_BLOCK_N = 32
BWD_BLOCK_B = 128
GX_BLOCK_B = 256
PACK_BLOCK_N = 32
PACK_BLOCK_W = 32
#: Aim for at least this many programs in the gcoef kernel (a few waves on an H100's 132 SMs).
TARGET_PROGRAMS = 1024

WORD_BITS = 64


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def _check_device(*tensors: torch.Tensor) -> None:
    if _interpreting():
        return
    for t in tensors:
        if not t.is_cuda:
            raise ValueError("the Triton kernels need CUDA tensors (or TRITON_INTERPRET=1 to run them on the CPU)")


class _device_guard:
    """Make the tensor's CUDA device current while launching (no-op on the CPU)."""

    def __init__(self, t: torch.Tensor):
        self.ctx = torch.cuda.device(t.device) if t.is_cuda else None

    def __enter__(self):
        if self.ctx is not None:
            self.ctx.__enter__()

    def __exit__(self, *exc):
        if self.ctx is not None:
            return self.ctx.__exit__(*exc)
        return False


def _block(size: int, cap: int, floor: int = 16) -> int:
    return max(floor, min(cap, triton.next_power_of_2(max(1, size))))


# ==============================================================================================
# Training kernels
# ==============================================================================================

@triton.jit
def _forward_kernel(x_ptr, ia_ptr, ib_ptr, coef_ptr, y_ptr, N, B,
                    BLOCK_N: tl.constexpr, BLOCK_B: tl.constexpr):
    pid_n = tl.program_id(0)
    pid_b = tl.program_id(1)
    offs_n = pid_n.to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_b = pid_b.to(tl.int64) * BLOCK_B + tl.arange(0, BLOCK_B)
    mn = offs_n < N
    mb = offs_b < B
    m = mn[:, None] & mb[None, :]

    ia = tl.load(ia_ptr + offs_n, mask=mn, other=0).to(tl.int64)
    ib = tl.load(ib_ptr + offs_n, mask=mn, other=0).to(tl.int64)
    c0 = tl.load(coef_ptr + offs_n * 4 + 0, mask=mn, other=0.0)
    c1 = tl.load(coef_ptr + offs_n * 4 + 1, mask=mn, other=0.0)
    c2 = tl.load(coef_ptr + offs_n * 4 + 2, mask=mn, other=0.0)
    c3 = tl.load(coef_ptr + offs_n * 4 + 3, mask=mn, other=0.0)

    a = tl.load(x_ptr + ia[:, None] * B + offs_b[None, :], mask=m, other=0.0)
    b = tl.load(x_ptr + ib[:, None] * B + offs_b[None, :], mask=m, other=0.0)
    y = c0[:, None] + c1[:, None] * a + c2[:, None] * b + c3[:, None] * (a * b)
    tl.store(y_ptr + offs_n[:, None] * B + offs_b[None, :], y, mask=m)


@triton.jit
def _backward_coef_kernel(x_ptr, ia_ptr, ib_ptr, coef_ptr, g_ptr, part_ptr, gx_ptr,
                          N, B, b_per_split,
                          ATOMIC_GX: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_B: tl.constexpr):
    """part[split, n, :] = batch sums over this split of (g, g*a, g*b, g*a*b); optionally gx atomics."""
    pid_n = tl.program_id(0)
    pid_s = tl.program_id(1)
    offs_n = pid_n.to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    mn = offs_n < N
    ia = tl.load(ia_ptr + offs_n, mask=mn, other=0).to(tl.int64)
    ib = tl.load(ib_ptr + offs_n, mask=mn, other=0).to(tl.int64)
    c1 = tl.load(coef_ptr + offs_n * 4 + 1, mask=mn, other=0.0)
    c2 = tl.load(coef_ptr + offs_n * 4 + 2, mask=mn, other=0.0)
    c3 = tl.load(coef_ptr + offs_n * 4 + 3, mask=mn, other=0.0)

    b_start = pid_s.to(tl.int64) * b_per_split
    b_end = tl.minimum(b_start + b_per_split, B)
    acc_g = tl.zeros((BLOCK_N, BLOCK_B), dtype=tl.float32)
    acc_ga = tl.zeros((BLOCK_N, BLOCK_B), dtype=tl.float32)
    acc_gb = tl.zeros((BLOCK_N, BLOCK_B), dtype=tl.float32)
    acc_gab = tl.zeros((BLOCK_N, BLOCK_B), dtype=tl.float32)
    for b0 in range(b_start, b_end, BLOCK_B):
        offs_b = b0 + tl.arange(0, BLOCK_B)
        m = mn[:, None] & (offs_b < b_end)[None, :]
        g = tl.load(g_ptr + offs_n[:, None] * B + offs_b[None, :], mask=m, other=0.0)
        a = tl.load(x_ptr + ia[:, None] * B + offs_b[None, :], mask=m, other=0.0)
        b = tl.load(x_ptr + ib[:, None] * B + offs_b[None, :], mask=m, other=0.0)
        ga = g * a
        acc_g += g
        acc_ga += ga
        acc_gb += g * b
        acc_gab += ga * b
        if ATOMIC_GX:
            tl.atomic_add(gx_ptr + ia[:, None] * B + offs_b[None, :], g * (c1[:, None] + c3[:, None] * b), mask=m)
            tl.atomic_add(gx_ptr + ib[:, None] * B + offs_b[None, :], g * (c2[:, None] + c3[:, None] * a), mask=m)

    out = part_ptr + (pid_s.to(tl.int64) * N + offs_n) * 4
    tl.store(out + 0, tl.sum(acc_g, axis=1), mask=mn)
    tl.store(out + 1, tl.sum(acc_ga, axis=1), mask=mn)
    tl.store(out + 2, tl.sum(acc_gb, axis=1), mask=mn)
    tl.store(out + 3, tl.sum(acc_gab, axis=1), mask=mn)


@triton.jit
def _backward_x_sorted_kernel(g_ptr, x_ptr, row_ptr, ent_n_ptr, ent_o_ptr, ent_lin_ptr, ent_quad_ptr,
                              gx_ptr, B, BLOCK_B: tl.constexpr):
    """gx[i, :] = sum over incidences e of row i: g[n_e, :] * (lin_e + quad_e * x[o_e, :])."""
    i = tl.program_id(0).to(tl.int64)
    pid_b = tl.program_id(1)
    offs_b = pid_b.to(tl.int64) * BLOCK_B + tl.arange(0, BLOCK_B)
    mb = offs_b < B
    start = tl.load(row_ptr + i)
    end = tl.load(row_ptr + i + 1)
    acc = tl.zeros((BLOCK_B,), dtype=tl.float32)
    for e in range(start, end):
        n = tl.load(ent_n_ptr + e)
        o = tl.load(ent_o_ptr + e)
        lin = tl.load(ent_lin_ptr + e)
        quad = tl.load(ent_quad_ptr + e)
        g = tl.load(g_ptr + n * B + offs_b, mask=mb, other=0.0)
        xo = tl.load(x_ptr + o * B + offs_b, mask=mb, other=0.0)
        acc += g * (lin + quad * xo)
    tl.store(gx_ptr + i * B + offs_b, acc, mask=mb)


def _prep(x, ia, ib, coef):
    x = x.contiguous().float()
    ia = ia.contiguous().long()
    ib = ib.contiguous().long()
    coef = coef.contiguous().float()
    if x.dim() != 2 or ia.shape != ib.shape or coef.shape != (ia.numel(), 4):
        raise ValueError(f"bad shapes: x {tuple(x.shape)}, ia {tuple(ia.shape)}, ib {tuple(ib.shape)}, "
                         f"coef {tuple(coef.shape)}")
    _check_device(x, ia, ib, coef)
    return x, ia, ib, coef


def forward(x: torch.Tensor, ia: torch.Tensor, ib: torch.Tensor, coef: torch.Tensor) -> torch.Tensor:
    """y[n] = c0 + c1*x[ia[n]] + c2*x[ib[n]] + c3*x[ia[n]]*x[ib[n]]; x [in_dim, B] -> y [N, B]."""
    x, ia, ib, coef = _prep(x, ia, ib, coef)
    N, B = ia.numel(), x.shape[1]
    y = torch.empty((N, B), dtype=torch.float32, device=x.device)
    if N == 0 or B == 0:
        return y
    block_b = _block(B, FWD_BLOCK_B)
    grid = (triton.cdiv(N, FWD_BLOCK_N), triton.cdiv(B, block_b))
    with _device_guard(x):
        _forward_kernel[grid](x, ia, ib, coef, y, N, B, BLOCK_N=FWD_BLOCK_N, BLOCK_B=block_b, num_warps=4)
    return y


def _incidence(ia, ib, coef, in_dim):
    """The 2N (row, neuron) incidences sorted by row (stable, hence deterministic), as CSR."""
    N = ia.numel()
    rows = torch.cat([ia, ib])
    order = torch.argsort(rows, stable=True)
    neuron = torch.arange(N, device=ia.device, dtype=torch.int64).repeat(2)[order].contiguous()
    other = torch.cat([ib, ia])[order].contiguous()
    lin = torch.cat([coef[:, 1], coef[:, 2]])[order].contiguous()
    quad = torch.cat([coef[:, 3], coef[:, 3]])[order].contiguous()
    row_ptr = torch.zeros(in_dim + 1, dtype=torch.int64, device=ia.device)
    row_ptr[1:] = torch.cumsum(torch.bincount(rows, minlength=in_dim), 0)
    return row_ptr, neuron, other, lin, quad


def backward(x: torch.Tensor, ia: torch.Tensor, ib: torch.Tensor, coef: torch.Tensor, g: torch.Tensor,
             *, gx_mode: str | None = None, splits: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(gx [in_dim, B], gcoef [N, 4]) for upstream gradient g [N, B]; see the module docstring.

    ``gx_mode`` is "sorted" (deterministic, default ``GX_MODE``) or "atomic". ``splits`` (tests,
    tuning) fixes how many parts the batch is cut into for the gcoef reduction.
    """
    x, ia, ib, coef = _prep(x, ia, ib, coef)
    g = g.contiguous().float()
    N, B = ia.numel(), x.shape[1]
    if g.shape != (N, B):
        raise ValueError(f"g has shape {tuple(g.shape)}, expected {(N, B)}")
    _check_device(g)
    mode = gx_mode or GX_MODE
    if mode not in ("sorted", "atomic"):
        raise ValueError(f"unknown gx_mode {mode!r} (sorted or atomic)")
    gx = torch.zeros_like(x)
    gcoef = torch.zeros((N, 4), dtype=torch.float32, device=x.device)
    if N == 0 or B == 0:
        return gx, gcoef

    block_b = _block(B, BWD_BLOCK_B)
    n_blocks = triton.cdiv(N, BWD_BLOCK_N)
    tiles = triton.cdiv(B, block_b)
    if splits is None:
        splits = max(1, min(tiles, triton.cdiv(TARGET_PROGRAMS, n_blocks)))
    splits = max(1, min(int(splits), tiles))
    b_per_split = triton.cdiv(tiles, splits) * block_b
    splits = triton.cdiv(B, b_per_split)
    part = torch.empty((splits, N, 4), dtype=torch.float32, device=x.device)
    with _device_guard(x):
        _backward_coef_kernel[(n_blocks, splits)](
            x, ia, ib, coef, g, part, gx, N, B, b_per_split,
            ATOMIC_GX=(mode == "atomic"), BLOCK_N=BWD_BLOCK_N, BLOCK_B=block_b, num_warps=4)
        gcoef = part.sum(dim=0) if splits > 1 else part[0]
        if mode == "sorted":
            row_ptr, neuron, other, lin, quad = _incidence(ia, ib, coef, x.shape[0])
            gx_block = _block(B, GX_BLOCK_B)
            grid = (x.shape[0], triton.cdiv(B, gx_block))
            _backward_x_sorted_kernel[grid](g, x, row_ptr, neuron, other, lin, quad, gx, B,
                                            BLOCK_B=gx_block, num_warps=4)
    return gx, gcoef


# ==============================================================================================
# Packed-bit discrete evaluation (int64 words, 64 samples per word: the reference's layout)
# ==============================================================================================

def minterm_masks(device=None) -> torch.Tensor:
    """[16, 4] int64: entry (op, 2*a + b) is all ones if gate ``op`` outputs 1 for inputs (a, b), else 0.

    Derived from ``gates.TRUTH`` (the single definition of the gates).
    """
    t = np.asarray(gates.TRUTH).reshape(gates.NUM_OPS, 4)
    return torch.as_tensor(np.where(t != 0, -1, 0).astype(np.int64), device=device)


@triton.jit
def _or(a, b):
    return a | b


@triton.jit
def _encode_kernel(xt_ptr, feat_ptr, thr_ptr, out_ptr, n, W, BLOCK_W: tl.constexpr):
    """out[i, w] bit j = (x[w*64 + j, feat[i]] >= thr[i]), zero past sample n; xt is [F, n]."""
    i = tl.program_id(0).to(tl.int64)
    pid_w = tl.program_id(1)
    f = tl.load(feat_ptr + i)
    t = tl.load(thr_ptr + i)
    offs_w = pid_w.to(tl.int64) * BLOCK_W + tl.arange(0, BLOCK_W)
    j = tl.arange(0, 64).to(tl.int64)
    s = offs_w[:, None] * 64 + j[None, :]
    ms = s < n
    v = tl.load(xt_ptr + f * n + s, mask=ms, other=0)
    bit = ((v >= t) & ms).to(tl.int64)
    word = tl.reduce(bit << j[None, :], 1, _or)
    tl.store(out_ptr + i * W + offs_w, word, mask=offs_w < W)


@triton.jit
def _gate_layer_kernel(in_ptr, op_ptr, ia_ptr, ib_ptr, mt_ptr, out_ptr, N, W,
                       BLOCK_N: tl.constexpr, BLOCK_W: tl.constexpr):
    """out[n, :] = gate op[n] applied bitwise to in[ia[n], :] and in[ib[n], :] (minterm masks mt)."""
    pid_n = tl.program_id(0)
    pid_w = tl.program_id(1)
    offs_n = pid_n.to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_w = pid_w.to(tl.int64) * BLOCK_W + tl.arange(0, BLOCK_W)
    mn = offs_n < N
    m = mn[:, None] & (offs_w < W)[None, :]
    op = tl.load(op_ptr + offs_n, mask=mn, other=0).to(tl.int64)
    ia = tl.load(ia_ptr + offs_n, mask=mn, other=0).to(tl.int64)
    ib = tl.load(ib_ptr + offs_n, mask=mn, other=0).to(tl.int64)
    m00 = tl.load(mt_ptr + op * 4 + 0, mask=mn, other=0)[:, None]  # a=0, b=0
    m01 = tl.load(mt_ptr + op * 4 + 1, mask=mn, other=0)[:, None]  # a=0, b=1
    m10 = tl.load(mt_ptr + op * 4 + 2, mask=mn, other=0)[:, None]  # a=1, b=0
    m11 = tl.load(mt_ptr + op * 4 + 3, mask=mn, other=0)[:, None]  # a=1, b=1
    a = tl.load(in_ptr + ia[:, None] * W + offs_w[None, :], mask=m, other=0)
    b = tl.load(in_ptr + ib[:, None] * W + offs_w[None, :], mask=m, other=0)
    na = ~a
    nb = ~b
    out = (m00 & na & nb) | (m01 & na & b) | (m10 & a & nb) | (m11 & a & b)
    tl.store(out_ptr + offs_n[:, None] * W + offs_w[None, :], out, mask=m)


@triton.jit
def _score_kernel(words_ptr, scores_ptr, classes_ptr, n, W, K, G, BLOCK_W: tl.constexpr):
    """scores[s, k] = popcount over rows k*G .. k*G+G-1 of sample s; classes[s] = first argmax."""
    pid_w = tl.program_id(0)
    offs_w = pid_w.to(tl.int64) * BLOCK_W + tl.arange(0, BLOCK_W)
    mw = offs_w < W
    j = tl.arange(0, 64).to(tl.int64)
    s = offs_w[:, None] * 64 + j[None, :]
    ms = s < n
    best = tl.full((BLOCK_W, 64), -1, dtype=tl.int32)
    cls = tl.zeros((BLOCK_W, 64), dtype=tl.int32)
    for k in range(0, K):
        cnt = tl.zeros((BLOCK_W, 64), dtype=tl.int32)
        for r in range(0, G):
            row = k * G + r
            word = tl.load(words_ptr + row * W + offs_w, mask=mw, other=0)
            cnt += ((word[:, None] >> j[None, :]) & 1).to(tl.int32)
        tl.store(scores_ptr + s * K + k, cnt.to(tl.int64), mask=ms)
        better = cnt > best
        best = tl.where(better, cnt, best)
        cls = tl.where(better, k, cls)
    tl.store(classes_ptr + s, cls.to(tl.int64), mask=ms)


def _words(n: int) -> int:
    return -(-n // WORD_BITS)


def gate_layer(words: torch.Tensor, op: torch.Tensor, ia: torch.Tensor, ib: torch.Tensor,
               masks: torch.Tensor | None = None) -> torch.Tensor:
    """One discrete layer on packed words: [in_dim, W] int64 -> [N, W] int64 (row n = op[n](ia[n], ib[n]))."""
    words = words.contiguous()
    if words.dtype != torch.int64:
        raise ValueError(f"packed words must be int64, got {words.dtype}")
    op, ia, ib = (t.to(device=words.device, dtype=torch.int64).contiguous() for t in (op, ia, ib))
    masks = minterm_masks(words.device) if masks is None else masks
    _check_device(words)
    N, W = op.numel(), words.shape[1]
    out = torch.empty((N, W), dtype=torch.int64, device=words.device)
    if N == 0 or W == 0:
        return out
    grid = (triton.cdiv(N, PACK_BLOCK_N), triton.cdiv(W, PACK_BLOCK_W))
    with _device_guard(words):
        _gate_layer_kernel[grid](words, op, ia, ib, masks, out, N, W,
                                 BLOCK_N=PACK_BLOCK_N, BLOCK_W=PACK_BLOCK_W, num_warps=4)
    return out


def _check_features(net, x) -> torch.Tensor:
    """Validate (n, F) integer features (a tensor or array) like ``reference.check_features``; int64."""
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(np.asarray(x))
    if x.dim() != 2:
        raise LogicforgeError(f"input must be a 2-D (samples, features) array, got shape {tuple(x.shape)}")
    if x.shape[1] != net.features:
        raise LogicforgeError(f"input has {x.shape[1]} features per sample, the netlist expects {net.features}")
    if x.dtype.is_floating_point or x.dtype.is_complex or x.dtype == torch.bool:
        raise LogicforgeError(f"input must be integers (the quantised features), got dtype {x.dtype}")
    x = x.to(torch.int64)
    hi = (1 << net.feature_width) - 1
    if x.numel():
        lo_v, hi_v = int(x.min()), int(x.max())
        if lo_v < 0 or hi_v > hi:
            raise LogicforgeError(f"input values must lie in [0, {hi}] (feature_width {net.feature_width}), "
                                  f"got [{lo_v}, {hi_v}]")
    return x


def encode_packed(net, x) -> torch.Tensor:
    """Thermometer-encode and pack: (n, F) integer features -> [num_inputs, ceil(n/64)] int64 words."""
    return _encode(net, _check_features(net, x))


def _encode(net, x: torch.Tensor) -> torch.Tensor:
    _check_device(x)
    n = x.shape[0]
    pairs = net.encoded_bits()
    feat = torch.tensor([f for f, _ in pairs], dtype=torch.int64, device=x.device)
    thr = torch.tensor([t for _, t in pairs], dtype=torch.int64, device=x.device)
    W = _words(n)
    out = torch.empty((len(pairs), W), dtype=torch.int64, device=x.device)
    if W == 0 or not pairs:
        return out
    xt = x.t().contiguous()  # [F, n]: samples contiguous
    block_w = _block(W, PACK_BLOCK_W, floor=1)
    with _device_guard(x):
        _encode_kernel[(len(pairs), triton.cdiv(W, block_w))](xt, feat, thr, out, n, W,
                                                              BLOCK_W=block_w, num_warps=4)
    return out


def score_packed(words: torch.Tensor, n: int, classes: int, group_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-class popcounts of the output layer's words [classes*group_size, W]: (scores [n, K], classes [n])."""
    words = words.contiguous()
    _check_device(words)
    if words.shape[0] != classes * group_size:
        raise ValueError(f"output layer has {words.shape[0]} rows, expected {classes} x {group_size}")
    scores = torch.empty((n, classes), dtype=torch.int64, device=words.device)
    cls = torch.empty((n,), dtype=torch.int64, device=words.device)
    W = _words(n)
    if n == 0:
        return scores, cls
    block_w = _block(W, 8, floor=1)
    with _device_guard(words):
        _score_kernel[(triton.cdiv(W, block_w),)](words, scores, cls, n, W, classes, group_size,
                                                  BLOCK_W=block_w, num_warps=4)
    return scores, cls


class DeviceNetlist:
    """A netlist's layers as device tensors (op, a, b per layer) plus the minterm masks, made once."""

    def __init__(self, net, device):
        self.net = net
        self.device = torch.device(device)
        self.masks = minterm_masks(self.device)
        self.layers = [tuple(torch.as_tensor(arr, dtype=torch.int64, device=self.device)
                             for arr in (layer.op, layer.a, layer.b)) for layer in net.layers]


def _as_device_netlist(net, device) -> DeviceNetlist:
    if isinstance(net, DeviceNetlist) and net.device == torch.device(device):
        return net
    return DeviceNetlist(net.net if isinstance(net, DeviceNetlist) else net, device)


def layer_outputs_packed(net, x) -> list[torch.Tensor]:
    """Packed outputs of the encoder and every layer, like ``reference.layer_outputs`` (int64 words)."""
    plain = net.net if isinstance(net, DeviceNetlist) else net
    return _layer_outputs(net, _check_features(plain, x))


def _layer_outputs(net, x: torch.Tensor) -> list[torch.Tensor]:
    words = _encode(net.net if isinstance(net, DeviceNetlist) else net, x)
    dn = _as_device_netlist(net, words.device)
    outs = [words]
    for op, a, b in dn.layers:
        words = gate_layer(words, op, a, b, dn.masks)
        outs.append(words)
    return outs


def evaluate_packed(net, x) -> tuple[torch.Tensor, torch.Tensor]:
    """(scores [n, K] int64, classes [n] int64) on x's device; equals ``reference.evaluate``.

    ``net`` is a ``Netlist`` or a ``DeviceNetlist`` (to reuse its device tensors across calls);
    ``x`` is an (n, F) integer tensor (or array) of quantised features.
    """
    plain = net.net if isinstance(net, DeviceNetlist) else net
    x = _check_features(plain, x)
    out = _layer_outputs(net, x)[-1]
    return score_packed(out, x.shape[0], plain.classes, plain.group_size)


# ==============================================================================================
# Quick check and timing on one layer: python -m logicforge.train.triton_kernels [--help]
# ==============================================================================================

def bench(in_dim: int = 8000, n: int = 8000, batch: int = 1024, *, device: str | None = None,
          reps: int = 20, seed: int = 0) -> dict:
    """Time forward and backward (both gx modes) of one layer against the PyTorch path.

    Checks the results against ``forward_torch`` / ``backward_torch`` first. Returns milliseconds per
    call (mean over ``reps`` after warm-up) and the largest absolute differences.
    """
    import time

    from logicforge.train.functional import backward_torch, forward_torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    gen = torch.Generator().manual_seed(seed)
    x = (torch.rand(in_dim, batch, generator=gen) > 0.5).float().to(device)
    ia = torch.randint(0, in_dim, (n,), generator=gen).to(device)
    ib = torch.randint(0, in_dim, (n,), generator=gen).to(device)
    coef = torch.randn(n, 4, generator=gen).to(device)
    g = torch.randn(n, batch, generator=gen).to(device)

    def sync():
        if x.is_cuda:
            torch.cuda.synchronize(x.device)

    def timed(fn):
        fn()
        sync()
        t = time.perf_counter()
        for _ in range(reps):
            fn()
        sync()
        return (time.perf_counter() - t) / reps * 1e3

    ref_gx, ref_gc = backward_torch(x, ia, ib, coef, g)
    res = {"device": str(device), "in_dim": in_dim, "n": n, "batch": batch,
           "max_err_y": float((forward(x, ia, ib, coef) - forward_torch(x, ia, ib, coef)).abs().max())}
    for mode in ("sorted", "atomic"):
        gx, gc = backward(x, ia, ib, coef, g, gx_mode=mode)
        res[f"max_err_gx_{mode}"] = float((gx - ref_gx).abs().max())
        res[f"max_err_gcoef_{mode}"] = float((gc - ref_gc).abs().max())
    res["ms_forward_torch"] = timed(lambda: forward_torch(x, ia, ib, coef))
    res["ms_forward_triton"] = timed(lambda: forward(x, ia, ib, coef))
    res["ms_backward_torch"] = timed(lambda: backward_torch(x, ia, ib, coef, g))
    for mode in ("sorted", "atomic"):
        res[f"ms_backward_triton_{mode}"] = timed(lambda: backward(x, ia, ib, coef, g, gx_mode=mode))
    return res


def bench_packed(samples: int = 100_000, widths: tuple[int, ...] = (8000, 8000, 8000), *,
                 device: str | None = None, reps: int = 10, seed: int = 0) -> dict:
    """Time ``evaluate_packed`` on a random netlist against ``reference.evaluate`` (numpy, CPU).

    Checks that scores and classes agree first; returns milliseconds per call.
    """
    import time

    from logicforge.netlist import generate, reference

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    rng = np.random.default_rng(seed)
    net = generate.random_netlist(rng, features=64, feature_width=8, thresholds_per_feature=8,
                                  layer_widths=tuple(widths), classes=10, group_size=max(1, widths[-1] // 10))
    x = generate.random_features(rng, net, samples)
    xd = torch.as_tensor(x, device=device)
    dn = DeviceNetlist(net, device)
    t = time.perf_counter()
    ref_scores, ref_classes = reference.evaluate(net, x)
    ms_ref = (time.perf_counter() - t) * 1e3
    scores, classes = evaluate_packed(dn, xd)
    ok = bool(np.array_equal(scores.cpu().numpy(), ref_scores) and np.array_equal(classes.cpu().numpy(), ref_classes))

    def sync():
        if xd.is_cuda:
            torch.cuda.synchronize(xd.device)

    sync()
    t = time.perf_counter()
    for _ in range(reps):
        evaluate_packed(dn, xd)
    sync()
    return {"device": str(device), "samples": samples, "gates": net.num_gates, "matches_reference": ok,
            "ms_reference_numpy": ms_ref, "ms_evaluate_packed": (time.perf_counter() - t) / reps * 1e3}


def _main(argv=None) -> int:
    import argparse
    import json

    p = argparse.ArgumentParser(prog="python -m logicforge.train.triton_kernels",
                                description="check and time the Triton logic-layer kernels on one layer")
    p.add_argument("--in-dim", type=int, default=8000)
    p.add_argument("--n", type=int, default=8000)
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--reps", type=int, default=20)
    p.add_argument("--packed", action="store_true", help="time evaluate_packed instead (--n gates per layer, "
                   "3 layers, --batch samples)")
    a = p.parse_args(argv)
    if a.packed:
        res = bench_packed(a.batch, (a.n,) * 3, reps=a.reps)
    else:
        res = bench(a.in_dim, a.n, a.batch, reps=a.reps)
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
