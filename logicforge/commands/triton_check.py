"""``logicforge triton-check`` (developer): check and time the Triton kernels on one layer.

Default: forward and backward (both ``gx`` modes) of one logic layer with ``train.triton_kernels``
against the PyTorch path (``train.functional``): the largest differences, then milliseconds per call.
``--packed``: ``train.triton_packed.evaluate_packed`` on a random 3-layer netlist against
``netlist.reference.evaluate``. Prints one JSON object.

Without a CUDA GPU the kernels run in Triton's CPU interpreter: this command sets
``TRITON_INTERPRET=1`` (unless it is set) before Triton is imported. That is slow: use small sizes.
"""

from __future__ import annotations

import os
import time

from logicforge.commands import options


def configure(p) -> None:
    p.add_argument("--in-dim", type=int, default=8000, metavar="N", help="input rows of the layer (default 8000)")
    p.add_argument("--n", type=int, default=8000, metavar="N", help="gates of the layer (default 8000)")
    p.add_argument("--batch", type=int, default=1024, metavar="B", help="batch size (default 1024)")
    p.add_argument("--reps", type=int, default=20, metavar="R", help="timed repetitions (default 20)")
    p.add_argument("--packed", action="store_true", help="time evaluate_packed instead (--n gates per layer, "
                   "3 layers, --batch samples)")


def run(args) -> int:
    import json

    for dest in ("in_dim", "n", "batch", "reps"):
        options.at_least(args, dest, 1)
    import torch

    if not torch.cuda.is_available():  # before triton is imported: run the kernels on the CPU
        os.environ.setdefault("TRITON_INTERPRET", "1")
    if args.packed:
        res = bench_packed(args.batch, (args.n,) * 3, reps=args.reps)
    else:
        res = bench_layer(args.in_dim, args.n, args.batch, reps=args.reps)
    print(json.dumps(res, indent=1))
    return 0


def bench_layer(in_dim: int = 8000, n: int = 8000, batch: int = 1024, *, device: str | None = None,
          reps: int = 20, seed: int = 0) -> dict:
    """Time forward and backward (both gx modes) of one layer against the PyTorch path.

    Checks the results against ``functional.forward_torch`` / ``backward_torch`` first. Returns milliseconds per
    call (mean over ``reps`` after warm-up) and the largest absolute differences.
    """
    import torch

    from logicforge.train.functional import backward_torch, forward_torch
    from logicforge.train.triton_kernels import backward, forward

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
    import numpy as np
    import torch

    from logicforge.netlist import generate, reference
    from logicforge.train.triton_packed import DeviceNetlist, evaluate_packed

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
