"""Probe (not product code): would learned LUT4 nodes give a Fashion-MNIST network more accuracy per
iCE40 logic cell than the two-input gates? (docs/training.md, "Seventeenth round".)

Every node is a 4-input truth table (one LC on the iCE40, its flip-flop free); the head bits stay
two-input (LUT2 + the serial head's load multiplexer = one LUT4). Forward is discrete (binary inputs,
tables thresholded at 0: no discretisation gap); backward is the multilinear extension of the
sigmoid table at the binary point, so d out / d input_i = p[j with bit i set] - p[j with bit i clear].

Network: the 1220 live input bits of runs/fashion_up5k_ft (the committed up5k model) -> n1 LUT4 nodes
-> n2 LUT4 nodes -> K*G LUT2 head nodes reading [inputs | n1 | n2], fixed random wiring -> group sum /
tau -> cross-entropy; Adam, cosine lr; validation split 0.1 (train.data.hold_out). One thread.

    .venv/bin/logicforge train --config configs/fashion_mnist_up5k.yaml --name fashion_up5k_ft   # the input bits
    .venv/bin/python tools/fit/lut4_probe.py --n1 800 --n2 400 --G 160 --out runs/lut4_probe.jsonl
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


class LutLayer(torch.nn.Module):
    """``n`` nodes of ``k`` inputs, each wired at random to the ``n_in`` inputs; table logits N(0, 1)."""

    def __init__(self, n, k, n_in, gen):
        super().__init__()
        self.register_buffer("idx", torch.randint(0, n_in, (n, k), generator=gen))
        self.theta = torch.nn.Parameter(torch.randn(n, 2 ** k, generator=gen))

    def forward(self, x):  # x (B, M) in {0,1} (float)
        return LutFn.apply(x, self.theta, self.idx)


class LutFn(torch.autograd.Function):
    """Discrete forward; backward = the multilinear extension of sigmoid(theta) at the binary point."""

    @staticmethod
    def forward(ctx, x, theta, idx):
        k = idx.shape[1]
        xs = x[:, idx] > 0.5  # (B, n, k) bool
        j = (xs.long() * (2 ** torch.arange(k))).sum(-1)  # (B, n)
        ctx.save_for_backward(x, theta, idx, j)
        return (theta > 0).float().t().gather(0, j)

    @staticmethod
    def backward(ctx, g):  # g (B, n)
        x, theta, idx, j = ctx.saved_tensors
        k = idx.shape[1]
        p = torch.sigmoid(theta).t()  # (2^k, n)
        dtheta = torch.zeros_like(p)
        dtheta.scatter_add_(0, j, g * p.gather(0, j) * (1 - p.gather(0, j)))
        dx = torch.zeros_like(x)
        for i in range(k):
            bit = 1 << i
            hi = p.gather(0, j | bit); lo = p.gather(0, j & ~bit)
            dx.index_add_(1, idx[:, i], g * (hi - lo))
        return dx, dtheta.t(), None


class Net(torch.nn.Module):
    def __init__(self, n_in, n1, n2, classes, G, tau, seed, head_k=2):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.l1 = LutLayer(n1, 4, n_in, gen)
        self.l2 = LutLayer(n2, 4, n1, gen) if n2 else None
        self.head = LutLayer(classes * G, head_k, n_in + n1 + n2, gen)
        self.classes, self.G, self.tau = classes, G, tau

    def forward(self, x):
        h1 = self.l1(x)
        parts = [x, h1]
        if self.l2 is not None:
            parts.append(self.l2(h1))
        o = self.head(torch.cat(parts, 1))
        return o.view(o.shape[0], self.classes, self.G).sum(-1) / self.tau


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
    ap.add_argument("--netlist", default="runs/fashion_up5k_ft/netlist.json", help="whose live input bits to read")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(a.seed)
    ds = load_dataset("fashion_mnist")
    net0 = load(a.netlist)
    g, _ = optimize(net0)
    bits = list(g.inputs)  # (feature, threshold value) of every live input bit
    fi = np.array([b[0] for b in bits]); ti = np.array([b[1] for b in bits])
    rest, xv, yv = hold_out(ds, 0.1)

    def enc(x):
        return torch.from_numpy((x[:, fi] >= ti).astype(np.float32))

    xt, yt = enc(rest.x_train), torch.from_numpy(rest.y_train)
    xv, yv = enc(xv), torch.from_numpy(yv)
    model = Net(xt.shape[1], a.n1, a.n2, 10, a.G, a.tau, a.seed)
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
    if a.out:
        with open(a.out, "a") as fh:
            fh.write(json.dumps({**vars(a), "val": hist[-1], "hist": hist}) + "\n")


if __name__ == "__main__":
    main()
