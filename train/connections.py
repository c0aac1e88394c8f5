"""Input connections of the first layer that follow the image's geometry.

``connections: local`` pairs every first-layer gate's two encoded bits from nearby pixels: input a
is a bit of pixel p (the pixels are visited in random order, so every pixel with thresholds feeds
about the same number of gates), input b a bit of a pixel at most ``local_radius`` rows and
columns away (possibly p itself, with another threshold). The later layers keep ``unique``
connections. Only the connection indices change: the netlist format and the hardware are the same
as for random connections.
"""

from __future__ import annotations

import math

import torch

from logicforge.errors import LogicforgeError


def image_side(features: int) -> int:
    """The side of a square single-channel image of ``features`` pixels; an error otherwise."""
    side = math.isqrt(features)
    if side * side != features:
        raise LogicforgeError(f"connections: local needs square single-channel images; {features} features "
                              "are not a square")
    return side


def local_pairs(thresholds: list[list[int]], out_dim: int, radius: int,
                generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ia, ib)`` of ``out_dim`` gates over the thermometer bits of ``thresholds`` (one list per pixel).

    Bit order is the encoder's: by pixel, then ascending threshold.
    """
    side = image_side(len(thresholds))
    counts = torch.tensor([len(t) for t in thresholds], dtype=torch.int64)
    first = torch.cumsum(counts, 0) - counts  # bit index of each pixel's first threshold
    live = torch.nonzero(counts > 0).flatten()
    if len(live) == 0:
        raise LogicforgeError("connections: local: no pixel has a threshold")
    reps = math.ceil(out_dim / len(live))
    centre = torch.cat([live[torch.randperm(len(live), generator=generator)] for _ in range(reps)])[:out_dim]
    row, col = centre // side, centre % side
    # neighbour: offsets drawn until every gate has a pixel with thresholds inside the image
    other = torch.full_like(centre, -1)
    todo = torch.arange(out_dim)
    for _ in range(1000):
        if len(todo) == 0:
            break
        dr = torch.randint(-radius, radius + 1, (len(todo),), generator=generator)
        dc = torch.randint(-radius, radius + 1, (len(todo),), generator=generator)
        r, c = row[todo] + dr, col[todo] + dc
        inside = (r >= 0) & (r < side) & (c >= 0) & (c < side)
        cand = (r.clamp(0, side - 1) * side + c.clamp(0, side - 1))
        ok = inside & (counts[cand] > 0)
        other[todo[ok]] = cand[ok]
        todo = todo[~ok]
    other[todo] = centre[todo]  # isolated pixel: pair it with itself
    ia = first[centre] + (torch.rand(out_dim, generator=generator) * counts[centre]).long()
    ib = first[other] + (torch.rand(out_dim, generator=generator) * counts[other]).long()
    return ia, ib
