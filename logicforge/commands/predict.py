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
    from logicforge.fileio import atomic_path, load_array
    from logicforge.netlist import format as nf
    from logicforge.netlist import reference

    net = nf.load(args.netlist)
    x = load_array(args.input)
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
