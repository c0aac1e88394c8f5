"""How much of a netlist's head could fold away without changing its function.

Usage: ``python tools/ecp5/head_literals.py NETLIST.json``

After the passes (``netlist.passes.optimize``), each class's G output bits are literals (a node and a
polarity). Per class it counts the constant literals (a fixed offset of the score), the repeated
literals (the same node and polarity more than once: a weighted count) and the complementary pairs
(x and not x: they always add 1). A head that folded all of them would count ``G - const - repeated
- 2 * pairs`` distinct bits per class instead of G; the last line is that saving over all classes.
"""

from __future__ import annotations

import collections
import sys

from logicforge.netlist import format as nf
from logicforge.netlist import passes


def main(path: str) -> None:
    g, _ = passes.optimize(nf.load(path))
    K, G = g.classes, g.group_size
    print(f"{path}: {g.num_gates} gates after the passes, {K} classes of {G} output bits")
    saved = 0
    for k in range(K):
        lits = g.outputs[k * G:(k + 1) * G]
        const = sum(1 for lit in lits if lit >> 1 == 0)
        count = collections.Counter(lit for lit in lits if lit >> 1 != 0)
        repeated = sum(v - 1 for v in count.values())
        by_node = collections.defaultdict(dict)
        for lit, v in count.items():
            by_node[lit >> 1][lit & 1] = v
        pairs = sum(min(d.get(0, 0), d.get(1, 0)) for d in by_node.values())
        left = G - const - repeated - 2 * pairs
        saved += G - left
        print(f"class {k}: constant {const}, repeated {repeated}, complementary pairs {pairs}: "
              f"{left} of {G} bits left to count")
    print(f"all classes: {saved} of {K * G} head input bits ({100 * saved / (K * G):.1f} %) could fold away")


if __name__ == "__main__":
    main(sys.argv[1])
