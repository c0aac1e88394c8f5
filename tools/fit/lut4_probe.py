"""Probe (not product code): would learned LUT4 nodes give a Fashion-MNIST network more accuracy per
iCE40 logic cell than the two-input gates? (docs/training.md, "Seventh round".)

Every node is a 4-input truth table (one LC on the iCE40, its flip-flop free); the head bits stay
two-input (LUT2 + the serial head's load multiplexer = one LUT4). Forward is discrete (binary inputs,
tables thresholded at 0: no discretisation gap); backward is the multilinear extension of the
sigmoid table at the binary point, so d out / d input_i = p[j with bit i set] - p[j with bit i clear].

Network: the live input bits of a gate network (--netlist; one trained with the same validation split,
so the pool never saw the validation images) -> n1 LUT4 nodes -> n2 LUT4 nodes -> K*G LUT2 head nodes
reading [inputs | n1 | n2], wiring fixed at random or learned (--learn-wiring) -> group sum / tau ->
cross-entropy; Adam, cosine lr; validation split 0.1 (train.data.hold_out). One thread.

    .venv/bin/python tools/fit/sweep.py tools/fit/sweep_fashion16c.yaml runs/sweep_fashion16c.jsonl   # the input bits
    .venv/bin/python tools/fit/lut4_probe.py --n1 800 --n2 400 --G 160 --learn-wiring \
        --netlist runs/sweep_fashion16c/ft10_lr003_s0/netlist.json --out runs/lut4_probe.jsonl
"""
import argparse
import json
import math
import time

import numpy as np
import torch

from logicforge.netlist.format import load
from logicforge.netlist.passes import optimize
from logicforge.train.data import hold_out, load_dataset
from logicforge.train.lut_model import LutFn, PickFn, near  # the product's math (train/lut_model.py)


class LutLayer(torch.nn.Module):
    """``n`` nodes of ``k`` inputs, each wired at random to the ``n_in`` inputs; table logits N(0, 1)."""

    def __init__(self, n, k, n_in, gen, learn_wiring=False, allowed=None):
        super().__init__()
        self.n, self.k = n, k
        if allowed is None:
            self.register_buffer("idx", torch.randint(0, n_in, (n, k), generator=gen))
        else:  # (n_in, n) bool: the inputs each node may read (--radius)
            self.register_buffer("idx", torch.multinomial(allowed.t().float(), k, replacement=True, generator=gen))
        self.theta = torch.nn.Parameter(torch.randn(n, 2 ** k, generator=gen))
        # learned wiring starts at the random wiring: its logit leads by 1
        self.w = None
        if learn_wiring:
            w = torch.randn(n_in, n * k, generator=gen) * 0.01
            w[self.idx.reshape(-1), torch.arange(n * k)] += 1.0
            if allowed is not None:  # out of reach for good: Adam moves a logit by about lr per step
                w[~allowed.repeat_interleave(k, dim=1)] = -1e4
            self.w = torch.nn.Parameter(w)

    def wiring(self) -> torch.Tensor:
        """(n, k): the input each node's pins read."""
        return self.idx if self.w is None else self.w.argmax(0).view(self.n, self.k)

    def pins_used(self) -> torch.Tensor:
        """(n, k) bool: whether the node's discrete table depends on each pin."""
        t = (self.theta > 0).view(self.n, *([2] * self.k))  # dim 1 + i is pin k-1-i
        return torch.stack([(t.select(self.k - i, 0) != t.select(self.k - i, 1)).flatten(1).any(1)
                            for i in range(self.k)], 1)

    def forward(self, x):  # x (B, M) in {0,1} (float)
        xs = x[:, self.idx] if self.w is None else PickFn.apply(x, self.w).view(-1, self.n, self.k)
        return LutFn.apply(xs, self.theta)


class Net(torch.nn.Module):
    def __init__(self, n_in, n1, n2, classes, G, tau, seed, head_k=2, learn_wiring=False, in_pos=None, radius=0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        allowed = [None, None, None]
        if radius:  # locality: every node sits at a random pixel and reads only within `radius` of it
            side = int(in_pos.max()) + 1
            pos = [torch.randint(0, side, (m, 2), generator=gen) for m in (n1, n2, classes * G)]

            allowed = [near(in_pos, pos[0], radius), near(pos[0], pos[1], radius),
                       near(torch.cat([in_pos, pos[0], pos[1]]), pos[2], radius)]
        self.l1 = LutLayer(n1, 4, n_in, gen, learn_wiring, allowed[0])
        self.l2 = LutLayer(n2, 4, n1, gen, learn_wiring, allowed[1]) if n2 else None
        self.head = LutLayer(classes * G, head_k, n_in + n1 + n2, gen, learn_wiring, allowed[2])
        self.classes, self.G, self.tau = classes, G, tau

    def forward(self, x):
        h1 = self.l1(x)
        parts = [x, h1]
        if self.l2 is not None:
            parts.append(self.l2(h1))
        o = self.head(torch.cat(parts, 1))
        return o.view(o.shape[0], self.classes, self.G).sum(-1) / self.tau

    def live(self, n_in: int) -> dict:
        """What the discrete network keeps: live input bits and LUT4 nodes (read, through the pins
        their tables depend on, by a head node), and a rough iCE40 LC count (1.26 LC per input bit as
        the streaming encoder's estimates give, 1 per LUT4 node and per head bit, 330 for head and top)."""
        n1 = self.l1.n
        n2 = self.l2.n if self.l2 is not None else 0
        need = torch.zeros(n_in + n1 + n2, dtype=torch.bool)
        hw, hu = self.head.wiring(), self.head.pins_used()
        need[hw[hu]] = True
        if self.l2 is not None:
            w2, u2 = self.l2.wiring(), self.l2.pins_used()
            live2 = need[n_in + n1:]
            need[n_in:n_in + n1][w2[live2][u2[live2]]] = True
        w1, u1 = self.l1.wiring(), self.l1.pins_used()
        live1 = need[n_in:n_in + n1]
        need[:n_in][w1[live1][u1[live1]]] = True
        inputs, nodes = int(need[:n_in].sum()), int(need[n_in:].sum())
        head = self.classes * self.G
        return {"live_inputs": inputs, "live_lut4": nodes, "approx_lcs": round(1.26 * inputs + nodes + head + 330)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n1", type=int, default=800)
    ap.add_argument("--n2", type=int, default=400)
    ap.add_argument("--G", type=int, default=160)
    ap.add_argument("--tau", type=float, default=6.5)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--lr", type=float, default=0.03)
    ap.add_argument("--bs", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--learn-wiring", action="store_true", help="learned wiring (DWN-style mapping)")
    ap.add_argument("--netlist", default="runs/sweep_fashion16c/ft10_lr003_s0/netlist.json",
                    help="the gate network whose live input bits are the pool")
    ap.add_argument("--all-bits", type=int, default=0,
                    help="pool: every bit of a quantile thermometer with this many thresholds (fitted on the "
                         "training split) instead of a gate network's live bits")
    ap.add_argument("--radius", type=int, default=0,
                    help="locality: each node reads only inputs/nodes within this many pixels (rows and columns) of "
                         "its own random pixel (28 x 28 images); 0: anywhere")
    ap.add_argument("--save", default=None, help="write the trained network as a logicforge netlist here")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(a.seed)
    ds = load_dataset("fashion_mnist")
    rest, xv, yv = hold_out(ds, 0.1)
    if a.all_bits:
        from logicforge.train.encoding import fit_thresholds
        bits = [(f, t) for f, ts in enumerate(fit_thresholds(rest.x_train, a.all_bits, "quantile")) for t in ts]
    else:
        g, _ = optimize(load(a.netlist))
        bits = list(g.inputs)  # (feature, threshold value) of every live input bit
    fi = np.array([b[0] for b in bits]); ti = np.array([b[1] for b in bits])

    def enc(x):
        return torch.from_numpy((x[:, fi] >= ti).astype(np.float32))

    xt, yt = enc(rest.x_train), torch.from_numpy(rest.y_train)
    xv_raw = xv
    xv, yv = enc(xv), torch.from_numpy(yv)
    in_pos = torch.tensor([[f // 28, f % 28] for f in fi])
    model = Net(xt.shape[1], a.n1, a.n2, 10, a.G, a.tau, a.seed, learn_wiring=a.learn_wiring, in_pos=in_pos,
                radius=a.radius)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    steps = a.epochs * math.ceil(len(yt) / a.bs)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=a.lr * 0.0333)
    print(f"inputs {xt.shape[1]} n1 {a.n1} n2 {a.n2} G {a.G}", flush=True)
    hist = []
    for ep in range(a.epochs):
        t0 = time.time()
        model.train()
        perm = torch.randperm(len(yt))
        tot = 0.0
        for s in range(0, len(yt), a.bs):
            i = perm[s:s + a.bs]
            loss = torch.nn.functional.cross_entropy(model(xt[i]), yt[i])
            opt.zero_grad(); loss.backward(); opt.step(); sched.step()
            tot += loss.item() * len(i)
        model.eval()
        with torch.no_grad():
            acc = sum((model(xv[s:s + 2000]).argmax(1) == yv[s:s + 2000]).sum().item()
                      for s in range(0, len(yv), 2000)) / len(yv)
        hist.append(acc)
        print(f"epoch {ep + 1} loss {tot / len(yt):.4f} val {acc:.4f} {time.time() - t0:.1f}s", flush=True)
    assert bits == sorted(bits), "the encoded-bit order of the netlist"
    if a.save:  # the same parameters in the product's LutNet, then its export (train/export.py)
        from logicforge.train.export import lut_to_netlist
        from logicforge.train.lut_model import LutNet

        product = LutNet(xt.shape[1], 10, widths=[a.n1, a.n2], group_size=a.G, tau=a.tau, learn_wiring=a.learn_wiring)
        names = {"l1": "layers.0", "l2": "layers.1", "head": "head"}
        product.load_state_dict({names[k.split(".")[0]] + k[k.index("."):]: v for k, v in model.state_dict().items()})
        ths = [[] for _ in range(ds.features)]
        for f, t in bits:
            ths[f].append(int(t))
        net = lut_to_netlist(product, features=ds.features, feature_width=ds.feature_width,
                             thresholds=[sorted(t) for t in ths], class_names=ds.class_names)
        with torch.no_grad():
            ref = int((model(xv[:2000]).argmax(1) == yv[:2000]).sum()) / 2000
        from logicforge.netlist import reference
        got = reference.accuracy(net, xv_raw[:2000], yv[:2000].numpy())
        assert abs(got - ref) < 1e-9, f"export differs: {got} against {ref}"
        net.save(a.save)
    live = model.live(xt.shape[1])
    print(live, flush=True)
    if a.out:
        with open(a.out, "a") as fh:
            fh.write(json.dumps({**vars(a), "val": hist[-1], "hist": hist, **live}) + "\n")


if __name__ == "__main__":
    main()
