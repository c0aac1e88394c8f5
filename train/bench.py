"""Training-step speed and memory, ours against the straightforward formulation (``logicforge bench``).

What one measurement is (``measure(spec)``, run in a fresh subprocess so that its peak memory is its own):

- a network of ``layers`` x ``width`` gates over ``in_bits`` random binary inputs, ``classes`` classes
  (group size ``width // classes``), one fixed random batch of ``batch`` samples;
- ``warmup`` untimed steps, then ``steps`` timed ones; one step is forward (Gumbel noise drawn per step
  from a seed, as the trainer does), cross-entropy, backward and ``torch.optim.Adam.step``;
- ``ms_per_step`` is the median step; ``ms_forward`` / ``ms_backward`` / ``ms_optimizer`` the medians of
  the three parts; ``ms_noise`` the time of drawing one step's Gumbel noise alone (part of the forward);
- memory: ``peak_mem_mb`` is what the training steps add at their peak over the memory in use just
  before the first step (model, optimiser and batch already allocated): activations, saved tensors,
  gradients, Adam's state, temporaries. ``peak_total_mb`` is the whole peak (on the CPU the process's,
  Python and torch included).
  - CUDA: ``torch.cuda.max_memory_allocated`` (reset before the first step).
  - CPU: the process's peak resident set (Linux ``VmHWM``, reset before the first step through
    ``/proc/self/clear_refs``), in a second short run (1 warm-up + 1 step) started with
    ``GLIBC_TUNABLES=glibc.malloc.mmap_threshold=131072`` so that freed tensors leave the resident set
    at once. With glibc's default (adaptive) threshold, freed blocks stay resident for reuse, and the
    number measures the allocator more than the tensors; that figure, from the timing run, is kept as
    ``peak_mem_mb_default_allocator``. (For the same reason the trainer's allocator tuning,
    ``cpu_kernel.keep_freed_memory``, which every CPU timing run applies to every implementation alike,
    stands aside in the memory run.)

Implementations (``impl``): ``naive`` is ``train.naive.NaiveLogicNet`` (batch-major, all 16 relaxed gates
per sample and gate); ``cpp``, ``torch`` and ``triton`` are ``train.model.LogicNet`` with that backend.

Discrete evaluation: a random netlist of the CPU size evaluated with bit-packed words, in samples per
second: ``netlist.reference.evaluate`` (numpy) on the CPU, ``triton_packed.evaluate_packed`` on CUDA.

The command (``logicforge/commands/bench.py``) writes the results to ``bench/results.json`` (atomic
write) and prints a table.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time

from logicforge.fileio import die_with_parent

#: The CPU comparison size: 6 x 8000 gates, batch 256, 1568 binary inputs (28 x 28 pixels x 2 bits).
CPU_SIZE = {"layers": 6, "width": 8000, "batch": 256, "in_bits": 1568, "classes": 10}
#: The paper's CIFAR-10 scale (12 x 256,000 gates, batch 128), 3 thermometer bits per input byte.
CIFAR_SIZE = {"layers": 12, "width": 256_000, "batch": 128, "in_bits": 3072 * 3, "classes": 10}
#: --quick: a smoke run of every code path.
QUICK_SIZE = {"layers": 3, "width": 1000, "batch": 64, "in_bits": 256, "classes": 10}
#: The sizes users train for small FPGAs, measured after the CPU size (the first on 1 thread): the default
#: digits model (512 thermometer bits) and a 4 x 2000 network over 1568 bits.
SMALL_SIZES = ({"layers": 3, "width": 1000, "batch": 64, "in_bits": 512, "classes": 10, "threads": 1},
               {"layers": 4, "width": 2000, "batch": 256, "in_bits": 1568, "classes": 10})
#: torchlogix (an independent LGN library, optional): its forward_sampling per mode of ours.
TORCHLOGIX_SAMPLING = {"gumbel": "gumbel_hard", "softmax": "soft"}

EVAL_SAMPLES = {"cpu": 65_536, "cuda": 1 << 20}
QUICK_EVAL_SAMPLES = 4096
WORKER_TIMEOUT_S = 1800
RESULT_TAG = "BENCH-RESULT "


# ==============================================================================================
# One measurement (runs inside a worker subprocess)
# ==============================================================================================

def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _proc_status_mb(field: str) -> float | None:
    """``VmRSS`` / ``VmHWM`` of this process from /proc (Linux), in MiB; None elsewhere."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark to the current RSS (Linux >= 4.0: clear_refs 5)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _maxrss_mb() -> float:
    import resource

    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    return kb / 1024 if sys.platform != "darwin" else kb / 2**20


class _PeakMemory:
    """Peak memory of the code between ``start()`` and ``stop()``, in MiB: (growth, whole peak).

    CUDA: ``max_memory_allocated``. CPU on Linux: the peak resident set (``VmHWM``) after resetting
    it at ``start()``, minus the resident set there; elsewhere the ``ru_maxrss`` high-water mark,
    which cannot be reset, so an earlier peak (imports, set-up) can hide part of the growth.
    """

    def __init__(self, device):
        self.device = device

    def start(self) -> None:
        import torch

        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base, self.how = torch.cuda.memory_allocated(self.device) / 2**20, "cuda max_memory_allocated"
        elif _reset_peak_rss() and _proc_status_mb("VmHWM") is not None:
            self.base, self.how = _proc_status_mb("VmRSS"), "VmHWM (peak RSS, reset before the first step)"
        else:
            self.base, self.how = _maxrss_mb(), "ru_maxrss (not resettable)"

    def stop(self) -> tuple[float, float]:
        import torch

        if self.device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(self.device) / 2**20
        elif self.how.startswith("VmHWM"):
            peak = _proc_status_mb("VmHWM")
        else:
            peak = _maxrss_mb()
        return peak - self.base, peak


def _median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])


def measure(spec: dict) -> dict:
    """Time ``spec["steps"]`` training steps of one implementation; see the module docstring."""
    import torch

    from logicforge.train import functional as F
    from logicforge.train.model import LogicNet
    from logicforge.train.naive import NaiveLogicNet

    device = torch.device(spec["device"])
    impl, mode = spec["impl"], spec["mode"]
    layers, width, batch, in_bits, classes = (spec[k] for k in ("layers", "width", "batch", "in_bits", "classes"))
    group = max(1, width // classes)
    torch.manual_seed(0)
    kw = dict(layers=layers, width=width, group_size=group, tau=max(1.0, group / 10), mode=mode, seed=0)
    if impl == "naive":
        model = NaiveLogicNet(in_bits, classes, **kw)
    elif impl == "torchlogix":
        model = _torchlogix_net(in_bits, classes, **kw)
    else:
        model = LogicNet(in_bits, classes, backend=impl, **kw)
    model = model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=0.01, fused=True)  # the trainer's optimiser, for every impl
    seeded = impl != "torchlogix"  # torchlogix draws its own noise inside its forward
    g = torch.Generator().manual_seed(1)
    x = (torch.rand(batch, in_bits, generator=g) > 0.5).float().to(device)
    y = torch.randint(0, classes, (batch,), generator=g).to(device)
    from logicforge.train import cpu_kernel

    if device.type == "cpu":
        cpu_kernel.keep_freed_memory()  # the trainer's allocator setting, for every implementation alike
    if impl == "cpp":
        cpu_kernel.module()  # compile/load outside the timing

    _sync(device)
    mem = _PeakMemory(device)
    mem.start()

    fwd, bwd, opt_t, total = [], [], [], []
    for step in range(spec["warmup"] + spec["steps"]):
        _sync(device)
        t0 = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(x, noise_seed=step) if seeded else model(x), y)
        _sync(device)
        t1 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        _sync(device)
        t2 = time.perf_counter()
        opt.step()
        _sync(device)
        t3 = time.perf_counter()
        if step >= spec["warmup"]:
            fwd.append(t1 - t0), bwd.append(t2 - t1), opt_t.append(t3 - t2), total.append(t3 - t0)
        del loss

    peak, peak_total = mem.stop()

    # The per-step Gumbel noise alone (drawn on the device from a seeded generator).
    noise = []
    if mode == "gumbel" and seeded:
        for rep in range(3):
            _sync(device)
            t0 = time.perf_counter()
            F.layer_noise(model.layers, rep)
            _sync(device)
            noise.append(time.perf_counter() - t0)

    ms = lambda xs: round(_median(xs) * 1e3, 3)  # noqa: E731
    return {
        "impl": impl, "mode": mode, "device": device.type, "layers": layers, "width": width, "batch": batch,
        "in_bits": in_bits, "classes": classes, "gates": layers * width - width + classes * group,
        "steps": spec["steps"], "warmup": spec["warmup"],
        "ms_per_step": ms(total), "ms_forward": ms(fwd), "ms_backward": ms(bwd), "ms_optimizer": ms(opt_t),
        "ms_noise": ms(noise) if noise else (None if mode == "gumbel" else 0.0),
        "ms_per_step_min": round(min(total) * 1e3, 3),
        "peak_mem_mb": round(peak, 1), "peak_total_mb": round(peak_total, 1),
        "memory_measure": mem.how,
        "threads": torch.get_num_threads(),
    }


def import_torchlogix():
    """torchlogix's ``(LogicDense, GroupSum)``, or a string saying why they cannot be imported.

    torchlogix 0.2.2's top-level ``__init__`` imports ``circuit.py``, which needs Python 3.12 syntax;
    its layers do not. On older Pythons the layers are imported without running that ``__init__``.
    """
    import importlib
    import importlib.util
    import types

    if "torchlogix.layers" in sys.modules:
        layers = sys.modules["torchlogix.layers"]
        return layers.LogicDense, layers.GroupSum
    try:
        spec = importlib.util.find_spec("torchlogix")
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        return "torchlogix is not installed (pip install torchlogix==0.2.2 --no-deps)"
    try:
        try:
            layers = importlib.import_module("torchlogix.layers")
        except SyntaxError:
            for name in [m for m in sys.modules if m == "torchlogix" or m.startswith("torchlogix.")]:
                del sys.modules[name]
            pkg = types.ModuleType("torchlogix")
            pkg.__path__, pkg.__spec__ = list(spec.submodule_search_locations or []), spec
            sys.modules["torchlogix"] = pkg
            layers = importlib.import_module("torchlogix.layers")
        return layers.LogicDense, layers.GroupSum
    except Exception as e:  # a broken or incompatible install: the row is skipped with this reason
        return f"torchlogix cannot be imported ({e.__class__.__name__}: {e})"


def _torchlogix_net(in_bits, classes, *, layers, width, group_size, tau, mode, seed):
    """The same network in torchlogix 0.2.2: ``LogicDense`` layers (raw parametrization, fixed random
    connections, residual init) and its ``GroupSum``; gumbel -> ``gumbel_hard``, softmax -> ``soft``."""
    import torch

    found = import_torchlogix()
    if isinstance(found, str):
        raise RuntimeError(found)
    dense, group_sum = found
    torch.manual_seed(seed)
    dims = [in_bits] + [width] * (layers - 1) + [classes * group_size]
    kw = {"parametrization": "raw", "parametrization_kwargs": {"forward_sampling": TORCHLOGIX_SAMPLING[mode]}}
    return torch.nn.Sequential(*(dense(i, o, **kw) for i, o in zip(dims[:-1], dims[1:])), group_sum(classes, tau))


def measure_peak(spec: dict) -> dict:
    """The machine's measured peak with ``threads`` threads: fp32 GFLOP/s of a large matmul (counted
    as 2 n^3) and GB/s of a large triad ``a = b + s * c`` (3 x 4 bytes per element, 64 MB arrays)."""
    import torch

    n, m = 2048, 16 << 20
    x, y = torch.rand(n, n), torch.rand(n, n)
    b, c, a = torch.rand(m), torch.rand(m), torch.empty(m)
    flops, bws = [], []
    for _ in range(spec.get("reps", 5)):
        t0 = time.perf_counter()
        torch.mm(x, y)
        flops.append(2 * n ** 3 / (time.perf_counter() - t0) / 1e9)
        t0 = time.perf_counter()
        torch.add(b, c, alpha=1.5, out=a)
        bws.append(3 * 4 * m / (time.perf_counter() - t0) / 1e9)
    return {"kind": "peak", "device": "cpu", "threads": torch.get_num_threads(),
            "gflops": round(max(flops), 1), "gbytes_per_s": round(max(bws), 1)}


def step_work(layers: int, width: int, batch: int, in_bits: int, classes: int, mode: str) -> dict:
    """The least work one training step must do, as flops and bytes (a model, see docs/performance.md).

    Per gate and sample: backward 4 multiply-adds for the coefficient sums and, except in the first
    layer, 2 for the input gradients; softmax mode adds a forward of 3 multiply-adds (gumbel mode's
    forward is bit operations, counted as free). Per gate (16 logits): about 40 flops of softmax and its
    gradient, 12 per logit of Adam and, in gumbel mode, 40 per logit for the noise.
    Bytes: every gradient between layers written once and read once (4 + 4 bytes per gate and sample),
    and in softmax mode the float activations too; per gate, logits, gradient and Adam's two moments
    read and written (16 x 4 x 7 bytes). Cache reuse can beat the byte count; nothing beats the flops.
    """
    group = max(1, width // classes)
    outs = [width] * (layers - 1) + [classes * group]
    gates = sum(outs)
    gs = gates * batch
    first = outs[0] * batch
    flops = 2 * (4 * gs + 2 * (gs - first)) + (6 * gs if mode == "softmax" else 0)
    flops += gates * (40 + 16 * 12 + (16 * 40 if mode == "gumbel" else 0))
    nbytes = 8 * (gs - outs[-1] * batch) + (8 * gs if mode == "softmax" else 0) + gates * 16 * 4 * 7
    return {"gflop": flops / 1e9, "mbytes": nbytes / 1e6}


def measure_eval(spec: dict) -> dict:
    """Packed-bit inference on a random netlist of the given size: samples per second.

    ``impl`` is ``"reference_numpy"`` (``netlist.reference.evaluate``, CPU) or ``"triton"``
    (``triton_packed.evaluate_packed`` on ``device``; first checked against the reference).
    """
    import numpy as np

    from logicforge.netlist import generate, reference

    rng = np.random.default_rng(0)
    layers, width, in_bits, classes = (spec[k] for k in ("layers", "width", "in_bits", "classes"))
    thresholds = 8
    net = generate.random_netlist(rng, features=-(-in_bits // thresholds), feature_width=8,
                                  thresholds_per_feature=thresholds, layer_widths=(width,) * (layers - 1),
                                  classes=classes, group_size=max(1, width // classes))
    n = spec["samples"]
    x = generate.random_features(rng, net, n)
    times = []
    impl = spec["impl"]
    if impl == "reference_numpy":
        for _ in range(spec["reps"]):
            t0 = time.perf_counter()
            reference.evaluate(net, x)
            times.append(time.perf_counter() - t0)
        matches = None
    else:
        import torch

        from logicforge.train import triton_packed as tp

        dev = torch.device(spec["device"])
        dn = tp.DeviceNetlist(net, dev)
        xd = torch.as_tensor(x, device=dev)
        check = min(n, 8192)
        ref_scores, ref_classes = reference.evaluate(net, x[:check])
        scores, cls = tp.evaluate_packed(dn, xd[:check])
        matches = bool(np.array_equal(scores.cpu().numpy(), ref_scores)
                       and np.array_equal(cls.cpu().numpy(), ref_classes))
        tp.evaluate_packed(dn, xd)  # warm-up (compiles the kernels)
        for _ in range(spec["reps"]):
            _sync(dev)
            t0 = time.perf_counter()
            tp.evaluate_packed(dn, xd)
            _sync(dev)
            times.append(time.perf_counter() - t0)
    sec = _median(times)
    return {"impl": impl, "device": spec["device"], "gates": net.num_gates, "layers": len(net.layers),
            "inputs": net.num_inputs, "samples": n, "reps": spec["reps"], "ms_per_call": round(sec * 1e3, 3),
            "samples_per_s": round(n / sec), "matches_reference": matches}


# ==============================================================================================
# The driver
# ==============================================================================================

#: For the memory run: glibc serves every allocation above 128 KiB with its own mmap and unmaps it on
#: free (a fixed threshold also turns off glibc's adaptive one), so the resident set follows the live
#: tensors instead of what the allocator keeps for reuse. Slower (page faults), hence a separate run.
MEMORY_RUN_TUNABLES = "glibc.malloc.mmap_threshold=131072"


def _in_subprocess(spec: dict) -> dict:
    """Run one measurement in a fresh interpreter; a failure becomes an entry with ``error``."""
    cmd = [sys.executable, "-m", "logicforge.train.bench", json.dumps(spec)]
    env = dict(os.environ)
    if spec.get("memory_run"):
        env["GLIBC_TUNABLES"] = ":".join(filter(None, [env.get("GLIBC_TUNABLES"), MEMORY_RUN_TUNABLES]))
    if spec.get("threads"):
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(spec["threads"])
    label = {k: spec[k] for k in ("kind", "impl", "mode", "device", "layers", "width", "batch", "in_bits")
             if k in spec}
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=WORKER_TIMEOUT_S, env=env,
                             preexec_fn=die_with_parent)  # a killed bench leaves no worker running
    except subprocess.TimeoutExpired:
        return {**label, "error": f"timed out after {WORKER_TIMEOUT_S} s"}
    for line in reversed(res.stdout.splitlines()):
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG):])
    tail = [l for l in res.stderr.strip().splitlines() if l.strip()]
    return {**label, "error": (tail[-1] if tail else f"exit status {res.returncode}")[:300]}


def measure_entry(spec: dict) -> dict:
    """One table row: the timing run, plus on the CPU a short second run for the memory figure."""
    res = _in_subprocess(spec)
    if spec["kind"] != "train" or spec["device"] != "cpu" or "error" in res or spec.get("no_memory_run"):
        return res
    mem = _in_subprocess({**spec, "steps": 1, "warmup": 1, "memory_run": True})
    res["peak_mem_mb_default_allocator"] = res["peak_mem_mb"]
    if "error" in mem:
        res["peak_mem_mb"], res["memory_error"] = None, mem["error"]
    else:
        res["peak_mem_mb"], res["peak_total_mb"] = mem["peak_mem_mb"], mem["peak_total_mb"]
        res["memory_measure"] = f"{mem['memory_measure']}, separate 2-step run with GLIBC_TUNABLES={MEMORY_RUN_TUNABLES}"
    return res


def measure_any(spec: dict) -> dict:
    """One measurement of any kind (``train``, ``eval`` or ``peak``), in this process."""
    import torch

    kind = spec.get("kind")
    before = torch.get_num_threads()
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    try:
        return measure_eval(spec) if kind == "eval" else measure_peak(spec) if kind == "peak" else measure(spec)
    finally:
        torch.set_num_threads(before)


def _worker(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    if spec.get("threads"):
        import torch

        torch.set_num_threads(spec["threads"])
    out = measure_any(spec)
    print(RESULT_TAG + json.dumps(out), flush=True)
    return 0


def plan(args, devices, cuda_ok: bool):
    """The list of measurement specs, in run order, and notes on what was skipped."""
    steps = args.steps if args.steps is not None else (3 if args.quick else 10)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
    specs, notes = [], []
    base = {"kind": "train", "steps": steps, "warmup": warmup, "threads": args.threads}
    cpu_size = cpu_size_for(args)
    n_eval = QUICK_EVAL_SAMPLES if args.quick or args.size else None
    if "cpu" in devices:
        from logicforge.train import cpu_kernel

        cpp_ok = cpu_kernel.available()
        tlx = import_torchlogix()
        if isinstance(tlx, str):
            notes.append(f"cpu torchlogix: skipped ({tlx})")
        sizes = [cpu_size] if args.quick or args.size else [CPU_SIZE, *SMALL_SIZES]
        thread_counts = []
        for size in sizes:
            size = dict(size)
            threads = size.pop("threads", args.threads)
            thread_counts.append(threads)
            for mode in ("gumbel", "softmax"):
                for impl in ("naive", "cpp", "torch", "torchlogix"):
                    if impl == "cpp" and not cpp_ok:
                        notes.append(f"cpu {mode} cpp: skipped (the C++ kernel cannot be built here)")
                        continue
                    if impl == "torchlogix" and isinstance(tlx, str):
                        continue
                    specs.append({**base, "threads": threads, "impl": impl, "mode": mode, "device": "cpu", **size})
        for threads in dict.fromkeys(thread_counts):  # the machine's peak, for the floor column
            specs.append({"kind": "peak", "device": "cpu", "threads": threads, "reps": 2 if args.quick else 5})
        specs.append({"kind": "eval", "impl": "reference_numpy", "device": "cpu", "threads": args.threads,
                      **cpu_size, "samples": n_eval or EVAL_SAMPLES["cpu"], "reps": 3})
    if "cuda" in devices:
        if not cuda_ok:
            notes.append("cuda: skipped (no CUDA GPU on this machine)")
        else:
            sizes = [cpu_size] if args.quick or args.size else [CPU_SIZE, CIFAR_SIZE]
            for size in sizes:
                for mode in ("gumbel", "softmax"):
                    for impl in ("naive", "torch", "triton"):
                        if impl == "naive" and size is CIFAR_SIZE:
                            continue  # [batch, N, 16] float per layer: ~2 GB, 12 layers saved
                        specs.append({**base, "impl": impl, "mode": mode, "device": "cuda", **size})
            if CIFAR_SIZE in sizes:
                notes.append("cuda naive at the CIFAR size: not run ([128, 256000, 16] float32 per layer is "
                             "2.1 GB, saved for backward in each of 12 layers)")
            specs.append({"kind": "eval", "impl": "triton", "device": "cuda", "threads": args.threads,
                          **cpu_size, "samples": n_eval or EVAL_SAMPLES["cuda"], "reps": 5})
    return specs, notes


def cpu_size_for(args) -> dict:
    if args.size:
        from logicforge.errors import LogicforgeError

        try:
            layers, width, batch, in_bits = (int(v) for v in args.size.split(","))
        except ValueError:
            raise LogicforgeError(f"--size: expected layers,width,batch,in_bits (four integers), "
                                  f"got {args.size!r}") from None
        if min(layers, width, batch, in_bits) < 1 or width < 10:
            raise LogicforgeError(f"--size: every value must be positive and width at least 10, got {args.size!r}")
        return {"layers": layers, "width": width, "batch": batch, "in_bits": in_bits, "classes": 10}
    return QUICK_SIZE if args.quick else CPU_SIZE


def speedups(entries: list[dict]) -> dict:
    """Per (device, size, mode): naive ms / best ms of ours, and on CUDA torch ms / triton ms."""
    out = {}
    groups: dict[tuple, dict] = {}
    for e in entries:
        if "error" in e or "ms_per_step" not in e:
            continue
        key = (e["device"], e["layers"], e["width"], e["batch"], e["mode"])
        groups.setdefault(key, {})[e["impl"]] = e["ms_per_step"]
    for (device, layers, width, batch, mode), ms in groups.items():
        ours = {k: v for k, v in ms.items() if k not in ("naive", "torchlogix")}
        tag = f"{device}_{layers}x{width}_b{batch}_{mode}"
        if "naive" in ms and ours:
            best = min(ours, key=ours.get)
            out[f"{tag}_vs_naive"] = {"best_impl": best, "speedup": round(ms["naive"] / ours[best], 2)}
        if "torch" in ms and "triton" in ms:
            out[f"{tag}_triton_vs_torch"] = round(ms["torch"] / ms["triton"], 2)
        ours = {k: v for k, v in ours.items() if k != "torchlogix"}
        if "torchlogix" in ms and ours:
            best = min(ours, key=ours.get)
            out[f"{tag}_vs_torchlogix"] = {"best_impl": best, "speedup": round(ms["torchlogix"] / ours[best], 2)}
    return out


def table(entries: list[dict], notes: list[str]) -> str:
    rows = [("impl", "mode", "device", "size", "thr", "ms/step", "fwd", "bwd", "adam", "noise", "peak MB",
             "floor ms", "x floor", "vs naive", "vs tlx")]
    key = lambda e: (e["device"], e["layers"], e["width"], e["batch"], e["mode"])  # noqa: E731
    ref = {name: {key(e): e["ms_per_step"] for e in entries if e.get("impl") == name and "ms_per_step" in e}
           for name in ("naive", "torchlogix")}
    for e in entries:
        if e.get("kind") in ("eval", "peak") or "samples_per_s" in e or "gflops" in e:
            continue
        size = f"{e['layers']}x{e['width']} b{e['batch']} in{e['in_bits']}"
        if "error" in e:
            rows.append((e["impl"], e["mode"], e["device"], size, "", "error: " + e["error"]) + ("",) * 9)
            continue
        vs = ["", ""]
        for i, name in enumerate(("naive", "torchlogix")):
            r = ref[name].get(key(e))
            if r and e["impl"] not in ("naive", "torchlogix"):
                vs[i] = f"{r / e['ms_per_step']:.1f}x"
        noise = e.get("ms_noise")
        rows.append((e["impl"], e["mode"], e["device"], size, str(e.get("threads", "")), f"{e['ms_per_step']:.1f}",
                     f"{e['ms_forward']:.1f}", f"{e['ms_backward']:.1f}", f"{e['ms_optimizer']:.1f}",
                     "in fwd" if noise is None else f"{noise:.1f}",
                     "?" if e["peak_mem_mb"] is None else f"{e['peak_mem_mb']:.0f}",
                     f"{e['floor_ms']:.2f}" if "floor_ms" in e else "",
                     f"{e['x_floor']:.0f}" if "x_floor" in e else "", *vs))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    for e in entries:
        if "gflops" in e:
            lines.append(f"peak ({e['threads']} threads): {e['gflops']} GFLOP/s fp32 matmul, "
                         f"{e['gbytes_per_s']} GB/s triad")
        if "samples_per_s" in e:
            ok = "" if e["matches_reference"] is None else f", matches reference: {e['matches_reference']}"
            lines.append(f"eval {e['impl']} ({e['device']}): {e['gates']} gates, {e['samples']} samples: "
                         f"{e['samples_per_s']:,} samples/s{ok}")
        elif e.get("kind") == "eval" and "error" in e:
            lines.append(f"eval ({e['device']}): error: {e['error']}")
    lines += notes
    return "\n".join(lines)


def keep_best(old: dict | None, new: dict) -> dict:
    """Across rounds: the faster timing (the first round's memory figures stay), the higher peak."""
    if old is None or "error" in old:
        return new
    if "error" in new:
        return old
    if "gflops" in new:
        return {**old, "gflops": max(old["gflops"], new["gflops"]),
                "gbytes_per_s": max(old["gbytes_per_s"], new["gbytes_per_s"])}
    if "samples_per_s" in new:
        return new if new["samples_per_s"] > old["samples_per_s"] else old
    rounds = old.get("rounds_ms", [old["ms_per_step"]]) + [new["ms_per_step"]]
    if new["ms_per_step"] < old["ms_per_step"]:
        old = {**old, **{k: v for k, v in new.items() if k.startswith("ms_")}}
    return {**old, "rounds_ms": rounds}


def add_floor(entries: list[dict], peaks: list[dict]) -> None:
    """``floor_ms``: the least time of ``step_work`` at the measured peak of the row's thread count."""
    by_threads = {p["threads"]: p for p in peaks if "gflops" in p}
    for e in entries:
        peak = by_threads.get(e.get("threads"))
        if "error" in e or peak is None:
            continue
        work = step_work(e["layers"], e["width"], e["batch"], e["in_bits"], e["classes"], e["mode"])
        floor = max(work["gflop"] / peak["gflops"], work["mbytes"] / 1e3 / peak["gbytes_per_s"]) * 1e3
        e.update({"gflop": round(work["gflop"], 4), "mbytes": round(work["mbytes"], 2),
                  "floor_ms": float(f"{floor:.4g}"), "x_floor": round(e["ms_per_step"] / floor, 1)})


if __name__ == "__main__":
    raise SystemExit(_worker(sys.argv[1:]))
