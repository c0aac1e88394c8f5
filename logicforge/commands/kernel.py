"""``logicforge kernel``: where the C++ training kernel is cached; build or rebuild it.

Loading a built kernel takes no lock and runs no compiler; see ``logicforge.train.cpu_kernel``.
"""

from __future__ import annotations


def configure(p) -> None:
    p.add_argument("--rebuild", action="store_true",
                   help="build the kernel again even if a usable one is cached")
    p.add_argument("--path", action="store_true", help="print only the library's path")


def run(args) -> int:
    from logicforge.errors import LogicforgeError
    from logicforge.train import cpu_kernel

    path = cpu_kernel.library_path()
    if args.path:
        print(path)
        return 0
    cpu_kernel.keep_freed_memory()
    try:
        cpu_kernel.load(rebuild=args.rebuild)
    except LogicforgeError:
        raise
    except Exception as e:  # compiler missing or failing: say so in one line
        first = str(e).splitlines()[0] if str(e) else ""
        raise LogicforgeError(f"the C++ kernel could not be built ({e.__class__.__name__}: {first}); "
                              f"training falls back to plain PyTorch") from None
    print(f"C++ kernel: {path}")
    print(f"cache: {cpu_kernel.cache_dir()} (LOGICFORGE_KERNEL_CACHE); rebuild: logicforge kernel --rebuild")
    return 0
