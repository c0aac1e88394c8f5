"""The fused C++ kernel for the logic layer on the CPU, compiled on first use.

``torch.utils.cpp_extension.load`` builds ``cpu_kernel.cpp`` once per machine (about a minute) and
caches it under ``TORCH_EXTENSIONS_DIR`` (default ``~/.cache/torch_extensions``). Where no compiler is
available the trainer falls back to the plain PyTorch path, with a warning.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
import warnings
from pathlib import Path

SOURCE = Path(__file__).with_name("cpu_kernel.cpp")


def keep_freed_memory() -> None:
    """Ask glibc to serve the kernel's multi-megabyte buffers from the heap and keep them after free.

    By default each large tensor is a fresh mmap, so every training step page-faults (and zeroes) all
    of its activations again; with a 32 MB mmap threshold and a 1 GB trim threshold the buffers are
    reused. Measured on 6 x 8000 gates, batch 256, 1 thread: about 42 ms per step against 83 ms.
    A no-op where the C library is not glibc, or where ``GLIBC_TUNABLES`` already sets malloc
    thresholds (the benchmark's memory run does, so that freed tensors leave the resident set).
    """
    if "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass


@functools.cache
def module():
    """The compiled extension, or None if it cannot be built here."""
    if os.environ.get("LOGICFORGE_NO_CPP"):
        return None
    keep_freed_memory()
    try:
        from torch.utils import cpp_extension

        print("logicforge: loading the C++ logic-layer kernel (compiled once, then cached)", file=sys.stderr)
        return cpp_extension.load(
            name="logicforge_cpu_kernel",
            sources=[str(SOURCE)],
            extra_cflags=["-O3", "-march=native", "-fopenmp-simd"],
            verbose=False,
        )
    except Exception as e:  # no compiler, no ninja, build error: fall back to PyTorch
        warnings.warn(f"C++ logic-layer kernel unavailable, using plain PyTorch ({e.__class__.__name__}: {e})")
        return None


def available() -> bool:
    return module() is not None


def forward(x, ia, ib, coef):
    return module().forward(x, ia, ib, coef.contiguous())


def backward(x, ia, ib, coef, g, *, need_gx=True):
    """(gx or None, gcoef) over real-valued x; with ``need_gx`` False only gcoef is computed."""
    gx, gcoef = module().backward(x, ia, ib, coef.contiguous(), g, need_gx)
    return (gx if need_gx else None), gcoef


def backward_bits(packed, n, ia, ib, coef, g, *, need_gx=True):
    """Backward from the input saved as bits (``pack_bits``, ``n`` samples): (gx or None, gcoef).

    Same result as ``backward(unpack_bits(packed, n), ...)`` without unpacking; with ``need_gx``
    False (the network's input needs no gradient) only gcoef is computed.
    """
    gx, gcoef = module().backward_bits(packed, n, ia, ib, coef.contiguous(), g, need_gx)
    return (gx if need_gx else None), gcoef


# -- gate coefficients, Gumbel noise and the whole-network packed pass (gumbel mode) ---------------

def gumbel_noise(rows, k1, k2, *, fast_log=True):
    """Standard Gumbel samples [rows, 16] of ``functional.hashed_gumbel`` for the key (k1, k2).

    ``fast_log``: a short polynomial log (about 1 ulp) instead of SLEEF's; either rounds the last bit
    differently from ``torch.log`` now and then.
    """
    return module().gumbel_noise(rows, k1, k2, fast_log)


def gumbel_coef(logits, noise, temperature, coeffs):
    """(coeffs[argmax(logits + noise)], softmax((logits + noise) / temperature))."""
    return module().gumbel_coef(logits.contiguous(), noise.contiguous(), float(temperature), coeffs.contiguous())


def softmax_coef(logits, coeffs):
    """(softmax(logits) @ coeffs, softmax(logits))."""
    return module().softmax_coef(logits.contiguous(), coeffs.contiguous())


def coef_backward(grad_coef, soft, temperature, coeffs):
    """dL/dlogits = soft * (gw - sum(soft * gw)) / temperature with gw = grad_coef @ coeffs.T."""
    return module().coef_backward(grad_coef.contiguous(), soft, float(temperature), coeffs.contiguous())


def net_forward_bits(x, ia, ib, coef, classes, tau):
    """Whole-network forward on packed bits: (scores [B, classes], packed input of every layer)."""
    out = module().net_forward_bits(x.contiguous(), list(ia), list(ib), [c.contiguous() for c in coef],
                                    classes, float(tau))
    return out[0], out[1:]


def net_backward_bits(bits, ia, ib, coef, gs, batch, prefetch=2):
    """dL/dcoef of every layer from the saved bits and gs = (dL/dscores / tau)^T [classes, B].

    ``prefetch``: how many consumers ahead the gather loop prefetches gradient rows (0: none).
    """
    return module().net_backward_bits(list(bits), list(ia), list(ib), [c.contiguous() for c in coef],
                                      gs.contiguous(), batch, prefetch)
