"""A cost model: LUT4, flip-flops and logic cells of a netlist's board design, without synthesis.

The hardware is regular enough to count: :func:`estimate` rebuilds the same structure the
generators build (the optimised DAG and its pipeline schedule, the streaming encoder's slots and
replicas, every popcount node and argmax stage, the UART top) and counts LUT4s and flip-flops part
by part. Per part, logic cells are ``max(LUT4, FF)`` for cells where a LUT feeds its own
flip-flop, plus flip-flops that have no LUT of their own (delay and capture registers). A few
coefficients (``COEF``), fitted to yosys/nextpnr results of real designs (docs/hardware.md, the
recorded designs in tests/data/estimate_calibration.json), account for what ABC merges.

The split and names follow ``synth.json``'s ``lc_split``: ``encoder``, ``gates``, ``head``, ``top``.
"""

from __future__ import annotations

import math

from logicforge.errors import LogicforgeError

#: Fitted coefficients (``python -m logicforge.boards.calibrate --fit``; docs/hardware.md).
COEF = {
    "gate_luts": 0.78,      # LUT4 per gate of the optimised DAG (ABC merges 2-level trees)
    "table_luts": 1.0,      # LUT4 per table node (netlist LUT4 layers) of the optimised DAG: one LUT each
    "lc_scale": 1.0,        # nextpnr logic cells per structural cell
    "lut_scale": 0.80,      # yosys LUT4 per structural LUT (ABC shares logic the count does not see)
    "ff_scale": 0.95,       # yosys flip-flops per structural flip-flop (constant registers removed)
    "serial_counter_luts": 2.0,  # LUT4 per counter bit of the serial head (adder, rotate/load mux)
    "serial_chain_merge": 0.70,  # shift multiplexers absorbed per last-stage gate that feeds a chain
}

#: ECP5 (``ulx3s-85f``): the same top and structure, but ``synth_ecp5`` (ABC9, LUT5/LUT6 joined from
#: LUT4 pairs) needs more LUT4 sites (LUT4 + 2 per CCU2C) than ``synth_ice40`` needs LUT4s: yosys
#: LUT4 sites per LUT4 of the iCE40 model, fitted to the ECP5 syntheses of docs/hardware.md ("A
#: bigger board"). A slice holds two LUT4 and two flip-flops that need not belong together, so the
#: design's logic cells are max(LUT4 sites, FF), as ``synth.json`` counts them there.
ECP5_LUT_SITES = 1.34


def _popcount_cost(G: int, plps: int) -> tuple[int, int, int]:
    """(LUT4, FF, LC) of one class's popcount as ``head.build_head`` builds it."""
    from logicforge.hdl import pipeline

    P = pipeline.popcount_levels(G)
    nodes = [1] * G
    level = luts = ffs = lcs = 0
    while len(nodes) > 1:
        level += 1
        registered = level % plps == 0 or level == P
        nxt = []
        step = pipeline.LEAF_BITS if level == 1 else 2
        for i in range(0, len(nodes), step):
            group = nodes[i:i + step]
            total = sum(group)
            w = total.bit_length()
            if len(group) > 1:
                lut = w
            else:
                lut = 0  # a lone node passes through
            ff = w if registered else 0
            luts += lut
            ffs += ff
            lcs += max(lut, ff)
            nxt.append(total)
        nodes = nxt
    return luts, ffs, lcs


def head_cost(classes: int, group_size: int, plps: int) -> dict:
    from logicforge.hdl import pipeline
    from logicforge.netlist.format import score_width

    K, G = int(classes), int(group_size)
    S = score_width(G)
    cw = max(1, (K - 1).bit_length())
    pl, pf, pc = _popcount_cost(G, plps)
    luts, ffs, lcs = K * pl, K * pf, K * pc
    n = K
    first = True
    while n > 1:
        pairs, odd = n // 2, n % 2
        c_bits = 0 if first else cw  # the first level's indices are constants
        # compare stage: both candidates captured (no LUT), the compare bit (carry chain + LUT)
        cap = pairs * 2 * (S + c_bits)
        luts += pairs * S
        ffs += cap + pairs
        lcs += cap + pairs * S
        # select stage: one 2:1 mux LUT per bit into the winner's register
        sel = pairs * (S + cw)
        luts += sel
        ffs += sel
        lcs += sel
        # an odd candidate waits two stages
        wait = odd * 2 * (S + c_bits)
        ffs += wait
        lcs += wait
        n = pairs + odd
        first = False
    valid = pipeline.head_latency(G, K, plps)
    ffs += valid
    lcs += valid
    return {"luts": luts, "ffs": ffs, "lcs": lcs}


def serial_head_cost(classes: int, group_size: int) -> dict:
    """(LUT4, FF, LC) of the serial head's counters, argmax scan and control
    (``head.build_serial_scorer``; the shift chains count with the gates, ``gates_cost``)."""
    from logicforge.netlist.format import score_width

    K, G = int(classes), int(group_size)
    S = score_width(G)
    cw = max(1, (K - 1).bit_length())
    w1 = max(G - 1, 1).bit_length() + 1
    w2 = max(K - 2, 1).bit_length() + 1
    # per score bit: the counter's adder LUT (carry chain, its flip-flop set/reset by the load)
    # and the scan ring's copy/rotate multiplexer LUT; a flip-flop each
    luts = COEF["serial_counter_luts"] * K * S
    ffs = 2 * K * S
    # compare (carry chain LUTs, its registered bit), best and best_class, control counters,
    # index, five flags (counting, settle, scan, select, done)
    luts += S + 1 + (S + cw) + w1 + w2 + cw + 6
    ffs += 1 + (S + cw) + w1 + w2 + cw + 5
    # the chains' registered last bits (flip-flops with a synchronous clear, no LUT)
    ffs += K
    return {"luts": luts, "ffs": ffs, "lcs": max(luts, ffs)}


def gates_cost(graph, lps: int, *, pre_encoded: bool, head: str = "tree", classes: int = 0,
               group_size: int = 0) -> dict:
    """The gate stages; with the serial head, the last stage's register is the K shift chains
    (G flip-flops per class with a non-constant output, its multiplexer merged into the last gate's
    LUT where that gate is computed in the last stage, a LUT of its own otherwise)."""
    from logicforge.hdl import pipeline
    from logicforge.netlist import passes

    sch = pipeline.schedule(graph, lps, held=pipeline.held_registers(head))
    import numpy as np

    serial = head == "serial"
    stage = sch.stage
    produced = delay = 0
    last_stage = sch.stages if serial else sch.stages + 1
    for k in range(1, min(sch.stages, last_stage - 1) + 1):
        alive = sch.registered(k)
        produced += int(np.sum(alive & (stage == k)))
        delay += int(np.sum(alive & (stage < k)))
    luts = COEF["gate_luts"] * (graph.num_gates - graph.num_luts) + COEF["table_luts"] * graph.num_luts
    chain = 0
    if serial:
        lits = [int(o) for o in graph.outputs if (int(o) >> 1) != passes.CONST]
        K, G = int(classes), int(group_size)
        # every class with a non-constant output has a chain of G bits (padded with 0s)
        chain = G * sum(1 for k in range(K)
                        if any((int(o) >> 1) != passes.CONST for o in graph.outputs[k * G:(k + 1) * G]))
        # a table node has no pin to spare for the multiplexer
        merged = {o >> 1 for o in lits if sch.stages and stage[o >> 1] == sch.stages and (o >> 1) >= graph.first_gate
                  and graph.op[(o >> 1) - graph.first_gate] != passes.LUT}
        luts += chain - COEF["serial_chain_merge"] * len(merged)
        valid = pipeline.serial_load_cycle(depth=sch.depth, layers_per_stage=lps, pre_encoded=pre_encoded)
    else:
        valid = sch.stages + (0 if pre_encoded else pipeline.ENCODE_STAGES)
    ffs = produced + delay + chain + valid
    lcs = max(luts, produced + chain) + delay + valid
    return {"luts": luts, "ffs": ffs, "lcs": lcs, "depth": sch.depth, "stages": sch.stages,
            "delay_ffs": delay, "stage_ffs": produced, "chain_ffs": chain}


def encoder_cost(features: int, feature_width: int, comparators) -> dict:
    """The streaming encoder as ``hdl/stream.py`` builds it (its ``compare_plan`` and ``line_plan``)."""
    from logicforge.hdl.stream import (FANOUT_STAGES, MAX_FANOUT, compare_costs, compare_stages, counter_bits, line_plan,
                                       slot_table)

    slots, constants = slot_table(features, feature_width, comparators)
    live = [s for s in slots if s]
    L = sum(len(s) for s in live)
    S = max((len(s) for s in slots), default=0)
    W = int(feature_width)
    cbits = counter_bits(features)
    luts = ffs = lcs = 0
    # encoded bits: a flip-flop each, loaded by its own LUT
    luts += L
    ffs += L
    lcs += L
    if S:
        plan = line_plan(features, slots)
        lines = len(plan["pre"]) + sum(len(copies) for group in plan["lines"] for copies in group.values())
        if compare_stages(W) + FANOUT_STAGES > 1:
            # first-group lines from registers: the chunk's decoded values, a strobe per copy
            lines += len(plan["lines"][0]) + sum(len(c) for c in plan["lines"][0].values())
        luts += lines
        ffs += lines
        lcs += lines
        # the ROM word's register (no LUT), the compare trees and their replicated results
        users = [sum(1 for s in slots if len(s) > i) for i in range(S)]
        reps = sum(math.ceil(u / MAX_FANOUT) for u in users)
        tree_luts, tree_ffs = compare_costs(W)
        # per slot: the result's LUT and register, then its copies (flip-flops alone)
        luts += S * tree_luts + S
        ffs += S * W + S * tree_ffs + S + reps
        lcs += S * W + S * tree_ffs + S + reps
    # strobe delay, counter, restart copy (a flip-flop alone), last flag, done/out_valid
    k = compare_stages(W) + FANOUT_STAGES - 1
    ffs += 1
    lcs += 1
    luts += k + cbits + 2
    ffs += k + cbits + 3
    lcs += k + cbits + 3
    brams = 0
    if S:
        brams = math.ceil(S * W / 16) * math.ceil(features / 256)
    return {"luts": luts, "ffs": ffs, "lcs": lcs, "brams": brams, "live_bits": L, "live_features": len(live),
            "slots": S, "constant_bits": len(constants)}


def shift_encoder_cost(features: int, feature_width: int, comparators) -> dict:
    """The shift-chain encoder as ``hdl/shift_encoder.py`` builds it."""
    from logicforge.hdl.shift_encoder import CHAIN_SEGMENT, CHAIN_SEGMENT_GROUP, shift_pipeline_stages
    from logicforge.hdl.stream import compare_costs, counter_bits, slot_table

    slots, constants = slot_table(features, feature_width, comparators)
    N = sum(len(s) for s in slots)
    S = max((len(s) for s in slots), default=0)
    W = int(feature_width)
    D = shift_pipeline_stages(W)
    cbits = counter_bits(features)
    # feature counter, its last/first flags, restart copy (a flip-flop alone), tail, the token's
    # D - 1 stages and out_valid (flip-flops alone)
    luts = cbits + 2 + 1
    ffs = cbits + 2 + 1 + 1 + D
    lcs = cbits + 2 + 1 + 1 + D
    brams = 0
    if N:
        kw = max(1, S.bit_length()) + 1
        nseg = math.ceil(N / CHAIN_SEGMENT)
        copies = nseg + math.ceil(nseg / CHAIN_SEGMENT_GROUP) + (D - 2)
        tree_luts, tree_ffs = compare_costs(W)
        # chain bits (a LUT and its flip-flop each); the value register (a LUT each); the compare
        # tree and its result; the issue counter and the ROM pointer (a LUT and flip-flop per bit)
        paired = N + W + tree_luts + 1 + kw + (N + 1).bit_length()
        # flip-flops alone: the strobe's stages and copies, the threshold and count registers
        alone = copies + W + kw + (tree_ffs - tree_luts)
        luts += paired
        ffs += paired + alone
        lcs += paired + alone
        brams = math.ceil(N * W / 4096) + math.ceil(features * kw / 4096)
    # ``exact``: every cell is one that yosys keeps (no logic for ABC to share, no constant
    # registers), so the fitted LUT/FF scales do not apply (measured: docs/hardware.md)
    return {"luts": luts, "ffs": ffs, "lcs": lcs, "brams": brams, "live_bits": N,
            "live_features": sum(1 for s in slots if s), "slots": S, "constant_bits": len(constants),
            "exact": True}


def top_cost(divisor: int, gap_cycles: int, feature_width: int, bytes_per_feature: int) -> dict:
    t = int(divisor).bit_length() + 1
    g = int(gap_cycles).bit_length() + 1
    # receiver: sync 2, timer t, shreg 11, busy/brk/first 3, data 8, valid/error 2
    rx_ff = 2 + t + 11 + 3 + 8 + 2
    # transmitter: shreg 10, left 4, timer t
    tx_ff = 10 + 4 + t
    # control: gap timer g, byte index/flags ~8, value W, acc, reply 8 + pending, LEDs 7, reset sync 2
    ctl_ff = g + 8 + feature_width + 8 * (bytes_per_feature - 1) + 9 + 7 + 2
    ffs = rx_ff + tx_ff + ctl_ff
    luts = ffs  # nearly every control flip-flop has its own next-state LUT
    return {"luts": luts, "ffs": ffs, "lcs": ffs}


def estimate(netlist, *, board: str = "icebreaker", layers_per_stage=None, popcount_levels_per_stage=None,
             clock_mhz: float | None = None, baud: int | None = None, graph=None, head: str | None = None,
             encoder: str | None = None) -> dict:
    """Predicted ``luts``, ``ffs``, ``lcs`` (and per part in ``parts``) of the board design.

    ``board`` ``icebreaker``: the UART top with the streaming encoder (what ``synth`` builds);
    ``ulx3s-85f``: the same top on ECP5 (``luts`` are LUT4 sites, scaled by ``ECP5_LUT_SITES``);
    ``generic``: the core alone with its parallel comparators (no top). ``graph``: an already
    optimised ``passes.Graph`` of ``netlist`` (saves the passes' time). ``head``: ``serial`` or
    ``tree``; None means what the design is built with by default: the board top's
    (``boards.top.DEFAULT_TOP_HEAD``, serial) for a board, the generic core's (tree) for ``generic``.
    ``encoder``: the board top's threshold encoder (``boards.top.ENCODERS``; None: the default).
    The training budget (``hardware: {board, max_lcs}``) calls this with the run's settings, so it
    costs the same design that ``synth`` builds.
    """
    from logicforge.boards.top import check_encoder
    from logicforge.hdl import pipeline
    from logicforge.netlist import passes

    plps = pipeline.check_popcount_levels_per_stage(popcount_levels_per_stage)
    encoder = check_encoder(encoder)
    if board not in ("icebreaker", "generic", "ulx3s-85f"):
        raise LogicforgeError(f"no cost model for board {board!r} (known: icebreaker, generic, ulx3s-85f)")
    if head is None:
        from logicforge.boards.top import DEFAULT_TOP_HEAD

        head = DEFAULT_TOP_HEAD if board != "generic" else pipeline.DEFAULT_HEAD
    head = pipeline.check_head(head)
    lps = pipeline.check_layers_per_stage(layers_per_stage, head, netlist.has_luts)
    if graph is None:
        graph, _ = passes.optimize(netlist)
    sch = pipeline.schedule(graph, lps, held=pipeline.held_registers(head))
    comparators = [graph.inputs[n - 1] for n in range(1, graph.first_gate) if sch.last_use[n] > 0]
    parts = {}
    pre = board != "generic"
    if pre:
        cost = shift_encoder_cost if encoder == "shift" else encoder_cost
        parts["encoder"] = cost(netlist.features, netlist.feature_width, comparators)
    else:
        W = netlist.feature_width
        n = len(comparators)
        luts = n * max(1, math.ceil((W - 1) / 3))
        parts["encoder"] = {"luts": luts, "ffs": n, "lcs": max(luts, n)}
    parts["gates"] = gates_cost(graph, lps, pre_encoded=pre, head=head, classes=netlist.classes,
                                group_size=netlist.group_size)
    if head == "serial":
        parts["head"] = serial_head_cost(netlist.classes, netlist.group_size)
    else:
        parts["head"] = head_cost(netlist.classes, netlist.group_size, plps)
    if pre:
        from logicforge.boards.top import DEFAULT_BAUD, DEFAULT_GAP_TIMEOUT_S, bytes_per_feature
        from logicforge.boards.uart import divisor_for

        clk = (clock_mhz or 12.0) * 1e6
        div = divisor_for(clk, baud or DEFAULT_BAUD)
        gap = max(int(DEFAULT_GAP_TIMEOUT_S * clk), 30 * div)
        parts["top"] = top_cost(div, gap, netlist.feature_width, bytes_per_feature(netlist.feature_width))
    for name, d in parts.items():
        exact = d.pop("exact", False)
        d["lcs_structural"] = int(round(d["lcs"]))
        d["lcs"] = int(round(d["lcs"] * COEF["lc_scale"]))
        d["luts_structural"], d["ffs_structural"] = int(round(d["luts"])), int(d["ffs"])
        d["luts"] = int(round(d["luts"] * (1.0 if exact else COEF["lut_scale"])))
        d["ffs"] = int(round(d["ffs"] * (1.0 if exact else COEF["ff_scale"])))
    if board == "ulx3s-85f":
        for d in parts.values():
            d["luts"] = int(round(d["luts"] * ECP5_LUT_SITES))
            d["lcs"] = max(d["luts"], d["ffs"])
    total = {key: sum(d[key] for d in parts.values()) for key in ("luts", "ffs", "lcs")}
    if board == "ulx3s-85f":
        # LUT4s and flip-flops of different parts share slices: the whole design's max, split
        # over the parts in proportion (as ``flow.lc_split`` does)
        lcs, raw = max(total["luts"], total["ffs"]), total["lcs"]
        for d in parts.values():
            d["lcs"] = int(round(d["lcs"] * lcs / raw)) if raw else 0
        big = max(parts, key=lambda name: parts[name]["lcs"])
        parts[big]["lcs"] += lcs - sum(d["lcs"] for d in parts.values())
        total["lcs"] = lcs
    latency = pipeline.latency(depth=sch.depth, layers_per_stage=lps, group_size=netlist.group_size,
                               classes=netlist.classes, popcount_levels_per_stage=plps, pre_encoded=pre, head=head)
    return {**total, "parts": parts, "board": board, "layers_per_stage": lps, "head": head,
            "encoder": None if board == "generic" else encoder,
            "sample_interval_cycles": pipeline.sample_interval(netlist.group_size, netlist.classes, head),
            "popcount_levels_per_stage": plps, "gates_after": graph.num_gates, "comparators": len(comparators),
            "latency_cycles": latency}
