"""Packed-bit evaluation of a discrete netlist with Triton (same result as ``netlist.reference.evaluate``).

- Words are **int64 with 64 samples each**, exactly the reference's layout (sample j is bit j % 64 of
  word j // 64), so a layer's output can be compared word for word with ``reference.layer_outputs``.
- ``encode_packed(net, x) -> words [num_inputs, W]``, ``gate_layer(words, op, ia, ib) -> [N, W]``,
  ``score_packed(words, n, classes, group_size) -> (scores, classes)``,
  ``layer_outputs_packed(net, x)`` and ``evaluate_packed(net, x) -> (scores, classes)``.
- The gate kernel applies ``op`` bitwise as an OR of minterms; the per-op minterm masks are a
  [16, 4] tensor built from ``netlist.gates.TRUTH``, passed to the kernel as data.
- Inputs are checked by ``netlist.reference.check_feature_array`` (the reference's rules).

Like ``train.triton_kernels``, the kernels need CUDA tensors or ``TRITON_INTERPRET=1``.
"""

from __future__ import annotations

import numpy as np
import torch
import triton
import triton.language as tl

from logicforge.errors import LogicforgeError
from logicforge.netlist import gates, reference
from logicforge.train.triton_kernels import block_size, check_device, device_guard, load4, load_wires, tile, tile2

PACK_BLOCK_N = 32
PACK_BLOCK_W = 32
WORD_BITS = 64


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
    f = tl.load(feat_ptr + i)
    t = tl.load(thr_ptr + i)
    offs_w, mw = tile(1, W, BLOCK_W)
    j = tl.arange(0, 64).to(tl.int64)
    s = offs_w[:, None] * 64 + j[None, :]
    ms = s < n
    v = tl.load(xt_ptr + f * n + s, mask=ms, other=0)
    bit = ((v >= t) & ms).to(tl.int64)
    word = tl.reduce(bit << j[None, :], 1, _or)
    tl.store(out_ptr + i * W + offs_w, word, mask=mw)


@triton.jit
def _gate_layer_kernel(in_ptr, op_ptr, ia_ptr, ib_ptr, mt_ptr, out_ptr, N, W,
                       BLOCK_N: tl.constexpr, BLOCK_W: tl.constexpr):
    """out[n, :] = gate op[n] applied bitwise to in[ia[n], :] and in[ib[n], :] (minterm masks mt)."""
    offs_n, mn, offs_w, m = tile2(N, W, BLOCK_N, BLOCK_W)
    op = tl.load(op_ptr + offs_n, mask=mn, other=0).to(tl.int64)
    ia, ib = load_wires(ia_ptr, ib_ptr, offs_n, mn)
    m00, m01, m10, m11 = load4(mt_ptr, op, mn, 0)  # minterms (a, b) = (0, 0), (0, 1), (1, 0), (1, 1)
    m00, m01, m10, m11 = m00[:, None], m01[:, None], m10[:, None], m11[:, None]
    a = tl.load(in_ptr + ia[:, None] * W + offs_w[None, :], mask=m, other=0)
    b = tl.load(in_ptr + ib[:, None] * W + offs_w[None, :], mask=m, other=0)
    na = ~a
    nb = ~b
    out = (m00 & na & nb) | (m01 & na & b) | (m10 & a & nb) | (m11 & a & b)
    tl.store(out_ptr + offs_n[:, None] * W + offs_w[None, :], out, mask=m)


@triton.jit
def _score_kernel(words_ptr, scores_ptr, classes_ptr, n, W, K, G, BLOCK_W: tl.constexpr):
    """scores[s, k] = popcount over rows k*G .. k*G+G-1 of sample s; classes[s] = first argmax."""
    offs_w, mw = tile(0, W, BLOCK_W)
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
    check_device(words)
    N, W = op.numel(), words.shape[1]
    out = torch.empty((N, W), dtype=torch.int64, device=words.device)
    if N == 0 or W == 0:
        return out
    grid = (triton.cdiv(N, PACK_BLOCK_N), triton.cdiv(W, PACK_BLOCK_W))
    with device_guard(words):
        _gate_layer_kernel[grid](words, op, ia, ib, masks, out, N, W,
                                 BLOCK_N=PACK_BLOCK_N, BLOCK_W=PACK_BLOCK_W, num_warps=4)
    return out


def _check_features(net, x) -> torch.Tensor:
    """Validate (n, F) integer features (a tensor or array) by ``reference.check_feature_array``; int64."""
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(np.asarray(x))
    integer = not (x.dtype.is_floating_point or x.dtype.is_complex or x.dtype == torch.bool)
    reference.check_feature_array(net, tuple(x.shape), x.dtype, integer, lambda: (x.min(), x.max()))
    return x.to(torch.int64)


def encode_packed(net, x) -> torch.Tensor:
    """Thermometer-encode and pack: (n, F) integer features -> [num_inputs, ceil(n/64)] int64 words."""
    return _encode(net, _check_features(net, x))


def _encode(net, x: torch.Tensor) -> torch.Tensor:
    check_device(x)
    n = x.shape[0]
    pairs = net.encoded_bits()
    feat = torch.tensor([f for f, _ in pairs], dtype=torch.int64, device=x.device)
    thr = torch.tensor([t for _, t in pairs], dtype=torch.int64, device=x.device)
    W = _words(n)
    out = torch.empty((len(pairs), W), dtype=torch.int64, device=x.device)
    if W == 0 or not pairs:
        return out
    xt = x.t().contiguous()  # [F, n]: samples contiguous
    block_w = block_size(W, PACK_BLOCK_W, floor=1)
    with device_guard(x):
        _encode_kernel[(len(pairs), triton.cdiv(W, block_w))](xt, feat, thr, out, n, W,
                                                              BLOCK_W=block_w, num_warps=4)
    return out


def score_packed(words: torch.Tensor, n: int, classes: int, group_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-class popcounts of the output layer's words [classes*group_size, W]: (scores [n, K], classes [n])."""
    words = words.contiguous()
    check_device(words)
    if words.shape[0] != classes * group_size:
        raise ValueError(f"output layer has {words.shape[0]} rows, expected {classes} x {group_size}")
    scores = torch.empty((n, classes), dtype=torch.int64, device=words.device)
    cls = torch.empty((n,), dtype=torch.int64, device=words.device)
    W = _words(n)
    if n == 0:
        return scores, cls
    block_w = block_size(W, 8, floor=1)
    with device_guard(words):
        _score_kernel[(triton.cdiv(W, block_w),)](words, scores, cls, n, W, classes, group_size,
                                                  BLOCK_W=block_w, num_warps=4)
    return scores, cls


class DeviceNetlist:
    """A netlist's layers as device tensors (op, a, b per layer) plus the minterm masks, made once."""

    def __init__(self, net, device):
        if net.has_luts:
            raise LogicforgeError("this netlist has LUT4 layers; the packed GPU evaluator runs gate layers only "
                                  "(evaluate it on the CPU: the reference)")
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
