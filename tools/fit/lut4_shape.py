"""Routability probe (not product code): a random LUT4 netlist shaped like the Fashion-MNIST LUT4 network
(docs/hardware.md, "LUT4 nodes on the iCE40"), with random tables and random wiring, global or local.

The input bits are a gate network's live bits (--pool, a netlist); n1 LUT4 nodes read them, n2 LUT4 nodes
read the first layer, and a head of K*G two-input gates reads [inputs, layer 1, layer 2] (forwarded by wire
nodes, which the passes remove). With --radius R every node sits at a random pixel of the 28 x 28 image and
reads only inputs (their feature's pixel) and nodes within R rows and columns of it; 0: anywhere.

    .venv/bin/python tools/fit/lut4_shape.py --pool runs/X/netlist.json --radius 3 --out local3.json
    .venv/bin/logicforge synth --board icebreaker --netlist local3.json --clock-mhz 100.5
"""
import argparse

import numpy as np

from logicforge.netlist import passes
from logicforge.netlist.format import Layer, LutLayer, Netlist, load

WIRE = 0xAAAA  # the export's wire node (train/export.py WIRE_TABLE)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pool", required=True, help="netlist whose live input bits are the inputs")
    ap.add_argument("--n1", type=int, default=700)
    ap.add_argument("--n2", type=int, default=300)
    ap.add_argument("--G", type=int, default=160)
    ap.add_argument("--radius", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    g, _ = passes.optimize(load(a.pool))
    bits = list(g.inputs)
    F, n_in = g.features, len(bits)
    ths = [[] for _ in range(F)]
    for f, t in bits:
        ths[f].append(int(t))
    in_pos = np.array([[f // 28, f % 28] for f, _ in bits])

    def pick(src_pos, n, k):
        pos = rng.integers(0, 28, (n, 2))
        idx = np.zeros((n, k), dtype=np.int64)
        for j in range(n):
            ok = np.arange(len(src_pos))
            if a.radius:
                near = np.nonzero((np.abs(src_pos - pos[j]) <= a.radius).all(1))[0]
                ok = near if len(near) else ok
            idx[j] = rng.choice(ok, k)
        return pos, idx

    p1, i1 = pick(in_pos, a.n1, 4)
    p2, i2 = pick(p1, a.n2, 4)
    _, ih = pick(np.concatenate([in_pos, p1, p2]), 10 * a.G, 2)
    # layer 1' = [layer 1, x]; layer 2' = [layer 2, x, layer 1]: every earlier signal forwarded by a wire
    l1 = LutLayer(np.concatenate([rng.integers(0, 1 << 16, a.n1), np.full(n_in, WIRE)]),
                  np.concatenate([i1, np.repeat(np.arange(n_in)[:, None], 4, 1)]))
    fwd = np.concatenate([a.n1 + np.arange(n_in), np.arange(a.n1)])
    l2 = LutLayer(np.concatenate([rng.integers(0, 1 << 16, a.n2), np.full(n_in + a.n1, WIRE)]),
                  np.concatenate([i2, np.repeat(fwd[:, None], 4, 1)]))

    def in_l2(c):  # concat index [x, layer 1, layer 2] -> position in layer 2'
        return a.n2 + c if c < n_in + a.n1 else c - n_in - a.n1

    head = Layer(rng.choice([1, 2, 4, 6, 7, 8, 9, 11, 13, 14], 10 * a.G),
                 [in_l2(c) for c in ih[:, 0]], [in_l2(c) for c in ih[:, 1]])
    net = Netlist(F, g.feature_width, ths, [l1, l2, head], [str(k) for k in range(10)], a.G, 6.5).validate()
    net.save(a.out)
    g2, _ = passes.optimize(net)
    print(f"{a.out}: {g2.num_inputs} input bits, {g2.num_luts} LUT4 nodes, {g2.num_gates} nodes in all, depth {g2.depth()}")


if __name__ == "__main__":
    main()
