"""``logicforge passes``: run the netlist optimisation passes and print gate counts per pass."""

from __future__ import annotations


from logicforge.commands import options


def configure(p) -> None:
    options.add_source(p)


def format_report(report: list[dict], gates_in: int, inputs_in: int) -> str:
    """A fixed-width table: one row per pass run, then the total."""
    lines = [f"{'round':>5}  {'pass':<10} {'gates before':>12} {'gates after':>11} {'removed':>8}"
             f" {'inputs':>13}"]
    for r in report:
        inputs = (f"{r['inputs_before']} -> {r['inputs_after']}"
                  if r["inputs_before"] != r["inputs_after"] else f"{r['inputs_after']}")
        lines.append(f"{r['round']:>5}  {r['name']:<10} {r['gates_before']:>12} {r['gates_after']:>11}"
                     f" {r['gates_before'] - r['gates_after']:>8} {inputs:>13}")
    out_g = report[-1]["gates_after"] if report else gates_in
    out_i = report[-1]["inputs_after"] if report else inputs_in
    pct = 100.0 * (gates_in - out_g) / gates_in if gates_in else 0.0
    lines.append(f"{'':>5}  {'total':<10} {gates_in:>12} {out_g:>11} {gates_in - out_g:>8}"
                 f" {f'{inputs_in} -> {out_i}':>13}   ({pct:.1f} % of gates removed)")
    return "\n".join(lines)


def run(args) -> int:
    from logicforge import source
    from logicforge.netlist import passes
    from logicforge.netlist.format import LutLayer

    net, name = source.load(args)
    graph, report = passes.optimize(net)
    print(f"{name}: {net.num_gates} gates in {len(net.layers)} layers, {net.num_inputs} encoded inputs; "
          f"optimised depth {graph.depth()}")
    if net.has_luts:  # "gates" above and below count the LUT4 nodes too
        print(f"LUT4 nodes: {sum(len(l) for l in net.layers if isinstance(l, LutLayer))} in the netlist, "
              f"{graph.num_luts} after the passes (the rest became gates, wires or constants)")
    print(format_report(report, net.num_gates, net.num_inputs))
    return 0
