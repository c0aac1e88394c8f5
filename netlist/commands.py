"""``logicforge predict``: the reference evaluator on an (n, F) integer array."""

from __future__ import annotations

from pathlib import Path


def configure(p) -> None:
    p.add_argument("--netlist", required=True, metavar="FILE", help="netlist JSON file")
    p.add_argument("--input", required=True, metavar="X.npy", help="(n, F) integer array of quantised features")
    p.add_argument("--output", required=True, metavar="P.npz", help="where to write 'classes' and 'scores'")


def run(args) -> int:
    import numpy as np

    from logicforge.errors import LogicforgeError
    from logicforge.fileio import atomic_path
    from logicforge.netlist import format as nf
    from logicforge.netlist import reference

    net = nf.load(args.netlist)
    try:
        x = np.load(args.input, allow_pickle=False)
    except FileNotFoundError:
        raise LogicforgeError(f"{args.input}: no such file") from None
    except (ValueError, OSError) as e:
        raise LogicforgeError(f"{args.input}: not a readable .npy array ({e})") from None
    if not isinstance(x, np.ndarray):
        raise LogicforgeError(f"{args.input}: expected a single .npy array, not an archive")
    try:
        scores, classes = reference.evaluate(net, x)
    except LogicforgeError as e:
        raise LogicforgeError(f"{args.input}: {e}") from None
    out = Path(args.output)
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, classes=classes, scores=scores)
    print(f"wrote {out}: {len(classes)} predictions")
    return 0
