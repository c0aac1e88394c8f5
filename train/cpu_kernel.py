"""The fused C++ kernel for the logic layer on the CPU, compiled on first use.

``torch.utils.cpp_extension.load`` builds ``cpu_kernel.cpp`` once per machine (about a minute) and
caches it under ``TORCH_EXTENSIONS_DIR`` (default ``~/.cache/torch_extensions``). Where no compiler is
available the trainer falls back to the plain PyTorch path, with a warning.
"""

from __future__ import annotations

import functools
import os
import sys
import warnings
from pathlib import Path

SOURCE = Path(__file__).with_name("cpu_kernel.cpp")


@functools.cache
def module():
    """The compiled extension, or None if it cannot be built here."""
    if os.environ.get("LOGICFORGE_NO_CPP"):
        return None
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


def backward(x, ia, ib, coef, g):
    gx, gcoef = module().backward(x, ia, ib, coef.contiguous(), g)
    return gx, gcoef


def backward_bits(packed, n, ia, ib, coef, g, *, need_gx=True):
    """Backward from the input saved as bits (``pack_bits``, ``n`` samples): (gx or None, gcoef).

    Same result as ``backward(unpack_bits(packed, n), ...)`` without unpacking; with ``need_gx``
    False (the network's input needs no gradient) only gcoef is computed.
    """
    gx, gcoef = module().backward_bits(packed, n, ia, ib, coef.contiguous(), g, need_gx)
    return (gx if need_gx else None), gcoef
