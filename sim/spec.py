"""The specification side of the equivalence proof: a netlist as flat, combinational Verilog.

Written from docs/netlist.md alone, on purpose without anything from ``logicforge.hdl`` and without
the netlist passes or ``gates.TRUTH``, so that the proof (``logicforge.sim.formal``) does not share
a bug with the generator it checks:

* **encoding**: one bit ``x[f] >= T`` per threshold, ordered by feature, then threshold, written
  with Verilog's ``>=`` (the generator writes AND/OR chains);
* **gates**: every gate of every layer of the *original* netlist (no passes), through the
  function ``gate(op, a, b) = op[{~a, ~b}]``, the format's definition "bit 3 - (2a + b) of op"
  (3 - (2a + b) is the 2-bit number {~a, ~b}); every LUT4 node through ``lut4(t, {p3, p2, p1, p0})
  = t[{p3, p2, p1, p0}]``, the format's "bit p0 + 2 p1 + 4 p2 + 8 p3 of the table";
* **scores**: per class a popcount of its G last-layer bits, a tree of ``+`` over neighbouring
  pairs (the generator uses 4-bit XOR/AND compressors, then an adder tree);
* **class**: a knockout over neighbouring pairs in which the right candidate survives only with
  a strictly greater score, so the smallest index wins ties.

The trees group bits and classes in aligned blocks, like the generator does, on purpose: then the
sums of the same blocks are points that the equivalence checker proves equal one by one, which is
what makes the proof of a 100-bit popcount fast (docs/verification.md). The code shares nothing
with the generator; ``tests/test_verify.py`` checks this module against the reference evaluator.

Modules (all combinational, no clock):

* ``logicnet_spec_front(in_data) -> class_bits`` (the K*G last-layer bits, class-major);
* ``logicnet_spec_head(class_bits) -> out_scores, out_class``;
* ``logicnet_spec(in_data) -> class_bits, out_scores, out_class`` (front, then head).

Port layout as in docs/hardware.md: feature f in ``in_data[f*W +: W]``, class k's score in
``out_scores[k*S +: S]`` with ``S = netlist.score_width``.
"""

from __future__ import annotations

from collections.abc import Callable

from logicforge.netlist.format import LutLayer, Netlist

FRONT = "logicnet_spec_front"
HEAD = "logicnet_spec_head"
TOP = "logicnet_spec"


def class_width(classes: int) -> int:
    """Bits of ``out_class`` (the contract in docs/hardware.md: max(1, ceil(log2 K)))."""
    return max(1, (int(classes) - 1).bit_length())


def front_verilog(net: Netlist) -> str:
    F, W = net.features, net.feature_width
    n_bits = net.num_inputs
    out_w = len(net.layers[-1])
    lines = [f"module {FRONT} (", f"  input  wire [{F * W - 1}:0] in_data,",
             f"  output wire [{out_w - 1}:0] class_bits", ");",
             "  // docs/netlist.md: the output for inputs (a, b) is bit 3 - (2a + b) of op,",
             "  // and 3 - (2a + b) = 2(1 - a) + (1 - b) is the 2-bit number {~a, ~b}",
             "  function gate(input [3:0] op, input a, input b);",
             "    gate = op[{~a, ~b}];",
             "  endfunction",
             "  // docs/netlist.md: a LUT4 node outputs bit p0 + 2 p1 + 4 p2 + 8 p3 of its table,",
             "  // the 4-bit number {p3, p2, p1, p0}",
             "  function lut4(input [15:0] t, input [3:0] p);",
             "    lut4 = t[p];",
             "  endfunction",
             f"  wire [{n_bits - 1}:0] x;"]
    i = 0
    for f, ts in enumerate(net.thresholds):
        for t in ts:
            lines.append(f"  assign x[{i}] = in_data[{f * W} +: {W}] >= {W}'d{int(t)};")
            i += 1
    prev = "x"
    for li, layer in enumerate(net.layers):
        name = f"l{li}"
        lines.append(f"  wire [{len(layer) - 1}:0] {name};")
        if isinstance(layer, LutLayer):  # a LUT4 layer: bit p0 + 2 p1 + 4 p2 + 8 p3 of the table
            for n, (t, ins) in enumerate(zip(layer.table.tolist(), layer.ins.tolist())):
                pins = ", ".join(f"{prev}[{i}]" for i in reversed(ins))
                lines.append(f"  assign {name}[{n}] = lut4(16'd{t}, {{{pins}}});")
        else:
            for n, (op, a, b) in enumerate(zip(layer.op.tolist(), layer.a.tolist(), layer.b.tolist())):
                lines.append(f"  assign {name}[{n}] = gate(4'd{op}, {prev}[{a}], {prev}[{b}]);")
        prev = name
    lines += [f"  assign class_bits = {prev};", "endmodule", ""]
    return "\n".join(lines)


def _pairwise(level: list, combine: Callable) -> object:
    """Reduce ``level`` over neighbours, level by level, to one item: ``combine(depth, j, left,
    right)`` gives the item for the j-th pair of a level (depth counts from 1); an odd last item
    passes up unchanged."""
    depth = 0
    while len(level) > 1:
        depth += 1
        level = [level[i] if i + 1 == len(level) else combine(depth, i // 2, level[i], level[i + 1])
                 for i in range(0, len(level), 2)]
    return level[0]


def head_verilog(classes: int, group_size: int, score_width: int) -> str:
    K, G, S = int(classes), int(group_size), int(score_width)
    CW = class_width(K)
    lines = [f"module {HEAD} (", f"  input  wire [{K * G - 1}:0] class_bits,",
             f"  output wire [{K * S - 1}:0] out_scores,", f"  output wire [{CW - 1}:0] out_class", ");"]
    # popcount per class: a pairwise tree over neighbours, level by level (an odd last operand
    # passes up). Sums of aligned power-of-two blocks of bits are internal points that an
    # equivalence checker can match with the generator's tree (docs/verification.md).
    for k in range(K):
        def add(depth, j, left, right, k=k):
            (a, amax), (b, bmax) = left, right
            name, total = f"c{k}_s{depth}_{j}", amax + bmax
            lines.append(f"  wire [{total.bit_length() - 1}:0] {name} = {a} + {b};")
            return name, total
        total_name, _ = _pairwise([(f"class_bits[{k * G + i}]", 1) for i in range(G)], add)
        lines.append(f"  wire [{S - 1}:0] score{k} = {total_name};")
        lines.append(f"  assign out_scores[{k * S} +: {S}] = score{k};")
    # argmax: a knockout over neighbours, level by level; of two candidates the one with the
    # lower class indices (the left one) survives unless the right score is strictly greater,
    # so the smallest class with the maximal score wins (docs/netlist.md).
    def knockout(depth, j, left, right):
        (ls, lc), (rs, rc) = left, right
        name = f"m{depth}_{j}"
        lines.append(f"  wire {name}_right = {rs} > {ls};")
        lines.append(f"  wire [{S - 1}:0] {name}_score = {name}_right ? {rs} : {ls};")
        lines.append(f"  wire [{CW - 1}:0] {name}_class = {name}_right ? {rc} : {lc};")
        return f"{name}_score", f"{name}_class"
    _, winner = _pairwise([(f"score{k}", f"{CW}'d{k}") for k in range(K)], knockout)
    lines += [f"  assign out_class = {winner};", "endmodule", ""]
    return "\n".join(lines)


def top_verilog(net: Netlist) -> str:
    F, W, K, S = net.features, net.feature_width, net.classes, net.score_width
    KG = len(net.layers[-1])
    CW = class_width(K)
    return "\n".join([
        f"module {TOP} (", f"  input  wire [{F * W - 1}:0] in_data,",
        f"  output wire [{KG - 1}:0] class_bits,", f"  output wire [{K * S - 1}:0] out_scores,",
        f"  output wire [{CW - 1}:0] out_class", ");",
        f"  {FRONT} front (.in_data(in_data), .class_bits(class_bits));",
        f"  {HEAD} head (.class_bits(class_bits), .out_scores(out_scores), .out_class(out_class));",
        "endmodule", ""])


def spec_verilog(net: Netlist) -> str:
    """Verilog of the three spec modules for ``net`` (see the module docstring)."""
    return "\n".join([
        "// logicforge specification: generated from the netlist alone (logicforge.sim.spec)",
        front_verilog(net), head_verilog(net.classes, net.group_size, net.score_width), top_verilog(net)])
