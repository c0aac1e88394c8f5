"""Triton kernels of the logic layer's forward and backward passes, for the CUDA path.

Used by ``train.functional`` when the backend is ``"triton"``; same math and layout as
``forward_torch`` / ``backward_torch`` (see that module's docstring):

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

The kernels need CUDA tensors, or Triton's CPU interpreter: ``TRITON_INTERPRET=1`` set by the
caller before ``triton`` is first imported (the tests and ``logicforge triton-check`` do that on a
machine without a GPU). This module does not change the environment.

Packed-bit evaluation of a discrete netlist is ``train.triton_packed``; it shares the launch
helpers and tile functions below (``check_device``, ``device_guard``, ``block_size``, ``tile``,
``tile2``, ``load_wires``, ``load4``).
"""


from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

#: Default input-gradient scheme: "sorted" (deterministic) or "atomic" (one fused pass).
GX_MODE = os.environ.get("LOGICFORGE_TRITON_GX", "sorted")

# Tile sizes (powers of two). The batch axis is the contiguous one.
FWD_BLOCK_N = 32
FWD_BLOCK_B = 128
BWD_BLOCK_N = 32
BWD_BLOCK_B = 128
GX_BLOCK_B = 256
#: Aim for at least this many programs in the gcoef kernel (a few waves on an H100's 132 SMs).
TARGET_PROGRAMS = 1024


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def check_device(*tensors: torch.Tensor) -> None:
    if _interpreting():
        return
    for t in tensors:
        if not t.is_cuda:
            raise ValueError("the Triton kernels need CUDA tensors (or TRITON_INTERPRET=1 to run them on the CPU)")


class device_guard:
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


def block_size(size: int, cap: int, floor: int = 16) -> int:
    return max(floor, min(cap, triton.next_power_of_2(max(1, size))))


@triton.jit
def tile(axis: tl.constexpr, size, BLOCK: tl.constexpr):
    """This program's ``BLOCK`` int64 offsets along grid ``axis``, and their mask ``offsets < size``."""
    offs = tl.program_id(axis).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    return offs, offs < size


@triton.jit
def tile2(N, B, BLOCK_N: tl.constexpr, BLOCK_B: tl.constexpr):
    """A (BLOCK_N rows, BLOCK_B columns) tile of grid axes 0 and 1: row offsets, row mask, column
    offsets, and the tile's 2-D mask."""
    offs_n, mn = tile(0, N, BLOCK_N)
    offs_b, mb = tile(1, B, BLOCK_B)
    return offs_n, mn, offs_b, mn[:, None] & mb[None, :]


@triton.jit
def load_wires(ia_ptr, ib_ptr, offs_n, mn):
    """The input rows ``ia[n]``, ``ib[n]`` of the gates at ``offs_n``, as int64."""
    ia = tl.load(ia_ptr + offs_n, mask=mn, other=0).to(tl.int64)
    ib = tl.load(ib_ptr + offs_n, mask=mn, other=0).to(tl.int64)
    return ia, ib


@triton.jit
def load4(ptr, idx, mask, other):
    """Entries ``4 * idx + k`` for k = 0..3 of a row-major [*, 4] array (coefficients, minterms)."""
    base = ptr + idx * 4
    return (tl.load(base + 0, mask=mask, other=other), tl.load(base + 1, mask=mask, other=other),
            tl.load(base + 2, mask=mask, other=other), tl.load(base + 3, mask=mask, other=other))


@triton.jit
def _forward_kernel(x_ptr, ia_ptr, ib_ptr, coef_ptr, y_ptr, N, B,
                    BLOCK_N: tl.constexpr, BLOCK_B: tl.constexpr):
    offs_n, mn, offs_b, m = tile2(N, B, BLOCK_N, BLOCK_B)
    ia, ib = load_wires(ia_ptr, ib_ptr, offs_n, mn)
    c0, c1, c2, c3 = load4(coef_ptr, offs_n, mn, 0.0)

    a = tl.load(x_ptr + ia[:, None] * B + offs_b[None, :], mask=m, other=0.0)
    b = tl.load(x_ptr + ib[:, None] * B + offs_b[None, :], mask=m, other=0.0)
    y = c0[:, None] + c1[:, None] * a + c2[:, None] * b + c3[:, None] * (a * b)
    tl.store(y_ptr + offs_n[:, None] * B + offs_b[None, :], y, mask=m)


@triton.jit
def _backward_coef_kernel(x_ptr, ia_ptr, ib_ptr, coef_ptr, g_ptr, part_ptr, gx_ptr,
                          N, B, b_per_split,
                          ATOMIC_GX: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_B: tl.constexpr):
    """part[split, n, :] = batch sums over this split of (g, g*a, g*b, g*a*b); optionally gx atomics."""
    pid_s = tl.program_id(1)
    offs_n, mn = tile(0, N, BLOCK_N)
    ia, ib = load_wires(ia_ptr, ib_ptr, offs_n, mn)
    _c0, c1, c2, c3 = load4(coef_ptr, offs_n, mn, 0.0)

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
    offs_b, mb = tile(1, B, BLOCK_B)
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
    check_device(x, ia, ib, coef)
    return x, ia, ib, coef


def forward(x: torch.Tensor, ia: torch.Tensor, ib: torch.Tensor, coef: torch.Tensor) -> torch.Tensor:
    """y[n] = c0 + c1*x[ia[n]] + c2*x[ib[n]] + c3*x[ia[n]]*x[ib[n]]; x [in_dim, B] -> y [N, B]."""
    x, ia, ib, coef = _prep(x, ia, ib, coef)
    N, B = ia.numel(), x.shape[1]
    y = torch.empty((N, B), dtype=torch.float32, device=x.device)
    if N == 0 or B == 0:
        return y
    block_b = block_size(B, FWD_BLOCK_B)
    grid = (triton.cdiv(N, FWD_BLOCK_N), triton.cdiv(B, block_b))
    with device_guard(x):
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
    check_device(g)
    mode = gx_mode or GX_MODE
    if mode not in ("sorted", "atomic"):
        raise ValueError(f"unknown gx_mode {mode!r} (sorted or atomic)")
    gx = torch.zeros_like(x)
    gcoef = torch.zeros((N, 4), dtype=torch.float32, device=x.device)
    if N == 0 or B == 0:
        return gx, gcoef

    block_b = block_size(B, BWD_BLOCK_B)
    n_blocks = triton.cdiv(N, BWD_BLOCK_N)
    tiles = triton.cdiv(B, block_b)
    if splits is None:
        splits = max(1, min(tiles, triton.cdiv(TARGET_PROGRAMS, n_blocks)))
    splits = max(1, min(int(splits), tiles))
    b_per_split = triton.cdiv(tiles, splits) * block_b
    splits = triton.cdiv(B, b_per_split)
    part = torch.empty((splits, N, 4), dtype=torch.float32, device=x.device)
    with device_guard(x):
        _backward_coef_kernel[(n_blocks, splits)](
            x, ia, ib, coef, g, part, gx, N, B, b_per_split,
            ATOMIC_GX=(mode == "atomic"), BLOCK_N=BWD_BLOCK_N, BLOCK_B=block_b, num_warps=4)
        gcoef = part.sum(dim=0) if splits > 1 else part[0]
        if mode == "sorted":
            row_ptr, neuron, other, lin, quad = _incidence(ia, ib, coef, x.shape[0])
            gx_block = block_size(B, GX_BLOCK_B)
            grid = (x.shape[0], triton.cdiv(B, gx_block))
            _backward_x_sorted_kernel[grid](g, x, row_ptr, neuron, other, lin, quad, gx, B,
                                            BLOCK_B=gx_block, num_warps=4)
    return gx, gcoef
