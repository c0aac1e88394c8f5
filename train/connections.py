"""Input connections that follow the image's geometry.

``connections: local`` pairs every first-layer gate's two encoded bits from nearby pixels: input a
is a bit of pixel p (the pixels are visited in random order, so every pixel with thresholds feeds
about the same number of gates), input b a bit of a pixel at most ``local_radius`` rows and
columns away (possibly p itself, with another threshold). The later layers keep ``unique``
connections.

``connections: grid`` (``grid_pairs``) keeps the geometry in every layer, like a sparse
convolutional net: every gate has a pixel position and reads only gates near it, so the netlist has
the locality a placer needs (with random connections every gate reads two signals from anywhere in
the previous layer, and the wiring crosses the whole chip).

Only the connection indices change: the netlist format and the hardware are the same as for random
connections.
"""

from __future__ import annotations

import math

import torch

from logicforge.errors import LogicforgeError


def image_side(features: int, kind: str = "local") -> int:
    """The side of a square single-channel image of ``features`` pixels; an error otherwise, naming
    ``kind`` (a ``connections`` value, or another config key)."""
    side = math.isqrt(features)
    if side * side != features:
        what = f"connections: {kind}" if kind in ("local", "grid") else kind
        raise LogicforgeError(f"{what} needs square single-channel images; {features} features "
                              "are not a square")
    return side


def local_pairs(thresholds: list[list[int]], out_dim: int, radius: int,
                generator: torch.Generator, kind: str = "local") -> tuple[torch.Tensor, torch.Tensor]:
    """``(ia, ib)`` of ``out_dim`` gates over the thermometer bits of ``thresholds`` (one list per pixel).

    Bit order is the encoder's: by pixel, then ascending threshold. ``kind`` names the connections
    in error messages.
    """
    side = image_side(len(thresholds), kind)
    counts = torch.tensor([len(t) for t in thresholds], dtype=torch.int64)
    first = torch.cumsum(counts, 0) - counts  # bit index of each pixel's first threshold
    live = torch.nonzero(counts > 0).flatten()
    if len(live) == 0:
        raise LogicforgeError(f"connections: {kind}: no pixel has a threshold")
    reps = math.ceil(out_dim / len(live))
    centre = torch.cat([live[torch.randperm(len(live), generator=generator)] for _ in range(reps)])[:out_dim]
    row, col = centre // side, centre % side
    # neighbour: a pixel with thresholds inside the image
    other, todo = _draw_near(row, col, side, radius, generator, lambda _todo, q: (q, counts[q] > 0))
    other[todo] = centre[todo]  # isolated pixel: pair it with itself
    ia = first[centre] + (torch.rand(out_dim, generator=generator) * counts[centre]).long()
    ib = first[other] + (torch.rand(out_dim, generator=generator) * counts[other]).long()
    return ia, ib


def bit_pixels(thresholds: list[list[int]]) -> torch.Tensor:
    """For every encoded bit (the encoder's order), the index of its pixel."""
    counts = torch.tensor([len(t) for t in thresholds], dtype=torch.int64)
    return torch.repeat_interleave(torch.arange(len(thresholds)), counts)


def grid_pairs(thresholds: list[list[int]], out_dims: list[int], radius: int,
               generator: torch.Generator) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(ia, ib)`` of every layer (``out_dims[l]`` gates in layer l) for ``connections: grid``.

    Every gate has a pixel position, and both its inputs lie within ``radius`` rows and columns of it:

    - layer 1 is ``local_pairs`` (the same indices as ``connections: local`` for the same generator
      state); a gate's position is the pixel of its input a (the centre pixel);
    - in a later layer, input a runs through a random permutation of the previous layer's gates,
      cycled, so every previous gate is read at least once when the layer is at least as wide as the
      previous one. This matters for the residual init, where every gate starts as the pass-through
      of input a: with full coverage no signal of the previous layer is lost at the start. The gate
      inherits input a's position, so positions stay spread over the image as ``unique`` spreads
      reads. Input b is a random previous gate whose position is at most ``radius`` rows and
      columns from it: an offset is drawn uniformly, then a gate of that pixel (the previous gates
      are bucketed by pixel); offsets leading outside the image or to an empty pixel are redrawn,
      and a draw that picks input a itself is redrawn too (a gate reading one signal twice is
      wasted). After 1000 rounds the rest fall back to a gate of the same pixel (input a itself
      only where it is the one gate within reach, e.g. at radius 0).

    A layer's receptive field therefore grows by ``radius`` per layer, as in a stack of
    (2 radius + 1)-square convolutions, while the last layer's class groups (group k = gates
    k*G..(k+1)*G-1) each still see positions spread over the whole image. Vectorised: 0.04 s for
    6 layers of 24000 gates over 28 x 28 pixels.
    """
    if not out_dims:
        return []
    side = image_side(len(thresholds), "grid")
    ia, ib = local_pairs(thresholds, out_dims[0], radius, generator, kind="grid")
    pos = bit_pixels(thresholds)[ia]
    pairs = [(ia, ib)]
    pixels = side * side
    for out_dim in out_dims[1:]:
        in_dim = len(pos)
        reps = math.ceil(out_dim / in_dim)
        ia = torch.cat([torch.randperm(in_dim, generator=generator) for _ in range(reps)])[:out_dim]
        new_pos = pos[ia]
        # previous gates bucketed by pixel: order[start[q] : start[q] + count[q]] are pixel q's gates
        order = torch.argsort(pos, stable=True)
        count = torch.bincount(pos, minlength=pixels)
        start = torch.cumsum(count, 0) - count

        def gate_of(todo, q):  # called at once, inside this iteration
            cand = order[_pick(start[q], count[q], generator).clamp(max=in_dim - 1)]
            return cand, (count[q] > 0) & (cand != ia[todo])

        ib, todo = _draw_near(new_pos // side, new_pos % side, side, radius, generator, gate_of)
        # nothing else within reach (or bad luck): any gate of the same pixel, input a itself at worst
        if len(todo):
            q = new_pos[todo]
            ib[todo] = order[_pick(start[q], count[q], generator)]
        pairs.append((ia, ib))
        pos = new_pos
    return pairs


def _draw_near(row: torch.Tensor, col: torch.Tensor, side: int, radius: int, generator: torch.Generator,
               candidate) -> tuple[torch.Tensor, torch.Tensor]:
    """For every position ``(row, col)``, a value near it: offsets of at most ``radius`` rows and
    columns are drawn, and ``candidate(todo, q)`` turns the pixels ``q`` reached by the positions
    ``todo`` into ``(values, acceptable)``; offsets outside the image or not acceptable are redrawn,
    up to 1000 rounds. Returns the values (-1 where none was found) and the positions still without."""
    found = torch.full_like(row, -1)
    todo = torch.arange(len(row))
    for _ in range(1000):
        if len(todo) == 0:
            break
        dr = torch.randint(-radius, radius + 1, (len(todo),), generator=generator)
        dc = torch.randint(-radius, radius + 1, (len(todo),), generator=generator)
        r, c = row[todo] + dr, col[todo] + dc
        inside = (r >= 0) & (r < side) & (c >= 0) & (c < side)
        value, acceptable = candidate(todo, r.clamp(0, side - 1) * side + c.clamp(0, side - 1))
        ok = inside & acceptable
        found[todo[ok]] = value[ok]
        todo = todo[~ok]
    return found, todo


def _pick(start: torch.Tensor, count: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A uniform index in ``[start, start + count)`` per element (``start`` where ``count`` is 0)."""
    off = (torch.rand(len(start), generator=generator) * count).long()
    return start + torch.minimum(off, (count - 1).clamp(min=0))  # float rounding can reach count
