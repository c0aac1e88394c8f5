"""LUT nodes (``node: lut4``): a network of learned truth tables with learned wiring.

Each node is a ``k``-input truth table (``netlist/lut.py``: pin ``i`` is bit ``i`` of the table
index). Its table logits ``theta`` (n, 2**k) give the discrete table ``theta > 0``; the forward pass
is that table on binary inputs, so training and the exported netlist compute the same function (no
discretisation gap). The backward pass is the multilinear extension of ``p = sigmoid(theta)`` at the
binary input point ``x``::

    f(x) = sum_m p[m] * prod_i (x_i if bit i of m else 1 - x_i)
    d f / d theta[m] = [m == j] * p[j] * (1 - p[j])          (j = sum_i x_i 2**i)
    d f / d x_i      = p[j | 2**i] - p[j & ~2**i]

Wiring (after DWN's learnable mapping): pin column ``c`` reads input ``argmax_j w[j, c]``; backward,
``w`` gets ``x^T g`` (as if the pins read ``x @ w``) and ``x`` gets ``g @ softmax(w, 0)^T``.
Local wiring (``radius``): every node sits at a random pixel and its pins may read only the inputs
and nodes within ``radius`` rows and columns of it (the others' logits are -1e4 for good), so the
placer can keep each net short.

Activations are batch-major, ``[batch, features]`` (unlike ``train.model``).
"""

from __future__ import annotations

import torch
from torch import nn

#: Pins of a hidden LUT node; the head's nodes have ``HEAD_PINS`` (a two-input gate each).
PINS = 4
HEAD_PINS = 2


class LutFn(torch.autograd.Function):
    """``(xs (B, n, k) in {0, 1}, theta (n, 2**k)) -> (B, n)``: node ``n`` outputs bit ``j`` of its
    table ``theta[n] > 0``; backward: the multilinear extension of ``sigmoid(theta)`` (module doc)."""

    @staticmethod
    def forward(ctx, xs, theta):
        k = xs.shape[2]
        weights = 2 ** torch.arange(k, device=xs.device)
        j = ((xs > 0.5).long() * weights).sum(-1)  # (B, n) table index
        ctx.save_for_backward(theta, j)
        ctx.k = k
        return (theta > 0).to(xs.dtype).t().gather(0, j)

    @staticmethod
    def backward(ctx, g):
        theta, j = ctx.saved_tensors
        p = torch.sigmoid(theta).t().to(g.dtype)  # (2**k, n)
        pj = p.gather(0, j)
        dtheta = torch.zeros_like(p).scatter_add_(0, j, g * pj * (1 - pj))
        dxs = torch.stack([g * (p.gather(0, j | (1 << i)) - p.gather(0, j & ~(1 << i))) for i in range(ctx.k)], -1)
        return dxs, dtheta.t().to(theta.dtype)


class PickFn(torch.autograd.Function):
    """``(x (B, M), w (M, C)) -> (B, C)``: column ``c`` is ``x[:, argmax_j w[j, c]]``; backward:
    ``d x = g @ softmax(w, 0)^T``, ``d w = x^T @ g``."""

    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        return x[:, w.argmax(0)]

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        return g @ torch.softmax(w, 0).t(), x.t() @ g


class LutLayer(nn.Module):
    """``n`` nodes of ``k`` pins reading ``n_in`` inputs: ``[batch, n_in] -> [batch, n]``, binary in,
    binary out, in training and eval alike.

    ``theta`` (n, 2**k) ~ N(0, 1) are the table logits. With ``learn_wiring``, ``w`` (n_in, n*k) is
    N(0, 0.01) plus 1 at a random initial wiring (``idx``) and pin ``c`` reads ``argmax w[:, c]``;
    without it the pins read ``idx`` for good. ``allowed`` (n_in, n) bool, optional: the inputs each
    node may read (the initial wiring is drawn among them; the others' logits are -1e4, which Adam,
    moving a logit by about ``lr`` per step, never brings back). ``pos`` (n, 2), optional: the nodes'
    pixels (local wiring), kept as a buffer.
    """

    def __init__(self, n: int, k: int, n_in: int, *, generator: torch.Generator | None = None,
                 learn_wiring: bool = True, allowed: torch.Tensor | None = None, pos: torch.Tensor | None = None):
        super().__init__()
        self.n, self.k, self.n_in = n, k, n_in
        self.register_buffer("pos", pos)  # None (not saved) without local wiring
        if allowed is None:
            idx = torch.randint(0, n_in, (n, k), generator=generator)
        else:
            idx = torch.multinomial(allowed.t().float(), k, replacement=True, generator=generator)
        self.register_buffer("idx", idx)
        self.theta = nn.Parameter(torch.randn(n, 2 ** k, generator=generator))
        self.w = None
        if learn_wiring:
            w = torch.randn(n_in, n * k, generator=generator) * 0.01
            w[self.idx.reshape(-1), torch.arange(n * k)] += 1.0
            if allowed is not None:
                w[~allowed.repeat_interleave(k, dim=1)] = -1e4
            self.w = nn.Parameter(w)

    def wiring(self) -> torch.Tensor:
        """(n, k) long: the input each pin reads."""
        return self.idx if self.w is None else self.w.argmax(0).view(self.n, self.k)

    def tables(self) -> torch.Tensor:
        """(n,) long: each node's discrete table, bit ``m`` = ``theta[n, m] > 0``."""
        bits = (self.theta > 0).long()
        return (bits << torch.arange(2 ** self.k, device=bits.device)).sum(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.w is None:
            xs = x[:, self.idx]
        else:
            xs = PickFn.apply(x, self.w).view(x.shape[0], self.n, self.k)
        return LutFn.apply(xs, self.theta)

    def extra_repr(self) -> str:
        return f"{self.n_in} -> {self.n}, k={self.k}, learn_wiring={self.w is not None}"


class LutNet(nn.Module):
    """Thermometer bits in, class scores out: ``[batch, in_bits] -> [batch, classes]``.

    ``x`` -> LUT4 layers of ``widths`` (each reads the one before) -> a head of ``classes *
    group_size`` two-input table nodes reading the concatenation ``[x, h1, h2, ...]`` -> each class's
    popcount / ``tau``. The forward pass is discrete in training and eval (``noise_seed`` is accepted
    for ``LogicNet``'s call shape and ignored: nothing is sampled).

    Local wiring: with ``radius`` > 0 and ``input_pos`` (in_bits, 2), the (row, column) pixel of each
    input bit in a ``side`` x ``side`` image, every node (hidden and head) gets a random pixel and reads
    only inputs and nodes within ``radius`` rows and columns of it (a node with nothing in reach reads
    anywhere).
    """

    def __init__(self, in_bits: int, classes: int, *, widths: list[int], group_size: int, tau: float,
                 seed: int = 0, learn_wiring: bool = True, radius: int = 0,
                 input_pos: torch.Tensor | None = None, side: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        dims = [in_bits] + list(widths)
        allowed = pos = [None] * (len(dims) + 1)
        if radius:
            pos = [torch.as_tensor(input_pos, dtype=torch.long).reshape(in_bits, 2)]
            pos += [torch.randint(0, side, (n, 2), generator=g) for n in list(widths) + [classes * group_size]]
            allowed = [near(a, b, radius) for a, b in zip(pos[:-2], pos[1:-1])] + [near(torch.cat(pos[:-1]), pos[-1],
                                                                                        radius)]
        self.layers = nn.ModuleList(LutLayer(o, PINS, i, generator=g, learn_wiring=learn_wiring, allowed=a, pos=p)
                                    for i, o, a, p in zip(dims[:-1], dims[1:], allowed, pos[1:]))
        self.head = LutLayer(classes * group_size, HEAD_PINS, sum(dims), generator=g, learn_wiring=learn_wiring,
                             allowed=allowed[-1], pos=pos[-1])
        self.in_bits, self.classes, self.group_size, self.tau = in_bits, classes, group_size, tau

    def forward(self, x: torch.Tensor, noise_seed: int | None = None) -> torch.Tensor:
        parts = [x]
        for layer in self.layers:
            parts.append(layer(parts[-1]))
        o = self.head(torch.cat(parts, 1))
        return o.view(o.shape[0], self.classes, self.group_size).sum(-1) / self.tau

    @torch.no_grad()
    def utilisation(self) -> dict:
        """The trainer's utilisation measures for table nodes (hidden and head): ``constant_fraction``
        (the table ignores every pin), ``unused_fraction`` (no path to a class output through pins the
        tables depend on), ``uncollapsed_fraction`` (some table entry has ``|sigmoid(theta) - 1/2| <
        1/4``, i.e. is not yet decided either way) and ``op_histogram_per_layer`` (per layer, the
        count of nodes by how many pins they depend on, 0..k)."""
        layers = list(self.layers) + [self.head]
        total = sum(l.n for l in layers)
        uses = [pins_used(l.tables(), l.k) for l in layers]
        n_const = sum(int((~u.any(1)).sum()) for u in uses)
        n_unc = sum(int(((torch.sigmoid(l.theta) - 0.5).abs() < 0.25).any(1).sum()) for l in layers)
        # liveness, from the head back through the pins each table depends on
        offsets = [0]
        for w in [self.in_bits] + [l.n for l in self.layers]:
            offsets.append(offsets[-1] + w)
        need = torch.zeros(offsets[-1], dtype=torch.bool)  # over [x, h1, h2, ...]
        hw = self.head.wiring().cpu()
        need[hw[uses[-1]]] = True
        live = 0
        for i in range(len(self.layers) - 1, -1, -1):
            layer, used = self.layers[i], uses[i]
            mine = need[offsets[i + 1]:offsets[i + 2]]
            live += int(mine.sum())
            reads = layer.wiring().cpu()[mine][used[mine]]
            need[offsets[i] + reads] = True
        unused = (sum(l.n for l in self.layers) - live) / total  # every head node is live
        hist = [[int(c) for c in torch.bincount(u.sum(1), minlength=l.k + 1)] for l, u in zip(layers, uses)]
        return {"constant_fraction": n_const / total, "unused_fraction": unused,
                "uncollapsed_fraction": n_unc / total, "op_histogram_per_layer": hist}


def near(src: torch.Tensor, dst: torch.Tensor, radius: int) -> torch.Tensor:
    """(len(src), len(dst)) bool: source pixel within ``radius`` rows and columns of each node's; a
    node with no source in reach may read any."""
    ok = ((src[:, None, :] - dst[None, :, :]).abs() <= radius).all(-1)
    ok[:, ~ok.any(0)] = True
    return ok


def pins_used(tables: torch.Tensor, k: int) -> torch.Tensor:
    """(n, k) bool: whether each ``k``-pin table (n,) depends on each pin."""
    tables = tables.cpu()
    m = torch.arange(2 ** k)
    bits = (tables[:, None] >> m) & 1  # (n, 2**k)
    out = []
    for i in range(k):
        lo = m[(m >> i) & 1 == 0]
        out.append((bits[:, lo] != bits[:, lo | (1 << i)]).any(1))
    return torch.stack(out, 1)
