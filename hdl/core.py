"""``LogicNetCore``: a netlist as a fully pipelined classifier (Verilog module ``logicnet_core``)."""

from __future__ import annotations

import numpy as np
from amaranth.hdl import C, Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from logicforge.hdl import pipeline
from logicforge.hdl.encoder import ge_const
from logicforge.hdl.gate_logic import gate_expr, lut_expr
from logicforge.hdl.head import (SerialScorer, build_head, build_serial_scorer, build_shift_chains,
                                 class_width)
from logicforge.netlist import passes
from logicforge.netlist.format import Netlist
from logicforge.netlist.gates import READS_A, READS_B


class LogicNetCore(wiring.Component):
    """A logic gate network classifier, one sample per clock, no stalls.

    Ports (domain ``sync``: Verilog ``clk``, ``rst``):
      * ``in_valid`` (1), ``in_data`` (F*W): feature f is ``in_data[f*W:(f+1)*W]``, unsigned;
      * ``out_valid`` (1), ``out_class`` (max(1, ceil(log2 K)) bits): the smallest class with the
        maximal score; ``out_scores`` (K*S, S = ``netlist.score_width``): class k's popcount is
        ``out_scores[k*S:(k+1)*S]``.

    ``out_valid`` rises exactly ``latency`` cycles after ``in_valid`` (see
    ``pipeline.latency``) and the outputs then belong to that sample. Only the valid chain is
    reset by ``rst``; all data registers are reset-less, so outputs are don't-care while
    ``out_valid`` is low.

    Variant ``pre_encoded=True``: instead of ``in_data`` the port ``in_bits``
    (``len(comparators)`` bits) carries the encoded bits, bit i being ``x[f] >= T`` for
    ``comparators[i] = (f, T)``; they must come straight from registers (the caller's encode
    register, e.g. the board top's streaming encoder) and the core has no encode stage, so its
    latency is ``pipeline.ENCODE_STAGES`` smaller. ``with_scores=False`` drops ``out_scores``
    (and the registers that delay the scores alongside the argmax). ``hierarchy=True`` makes the
    head a submodule (its own Verilog module ``...head``) so synthesis can count its cells apart;
    the logic is the same.

    Variant ``head="serial"`` (default ``"tree"``): the serial head (``hdl/head.py``,
    ``SerialHead``) for samples that arrive far apart. ``in_valid`` pulses must then be at least
    ``sample_interval = pipeline.serial_interval(G, K) = G + 2K + 3`` cycles apart (a closer one
    abandons the sample in progress), and ``out_valid`` (one pulse) rises ``latency =
    pipeline.latency(..., head="serial")`` cycles after ``in_valid``; ``out_class``/``out_scores``
    hold from then until the next sample reaches the head. The gate registers then hold their
    sample (``pipeline.held_registers``): each signal is registered once, in the stage that
    computes it, and later stages read it there, so no delay registers; the encode register loads
    only with ``in_valid``, and a ``pre_encoded`` core reads ``in_bits`` for ``input_hold_cycles``
    (``pipeline.input_hold_cycles``) cycles from ``in_valid``'s, during which it must not change.
    The last gate stage's register is MERGED into the head's K shift chains: each chain
    flip-flop's next state is ``load ? literal : next bit`` with the literal the stage's combinational expression of that output (inversion
    folded in, constant-1 outputs preset into the counter, constant outputs left out of the chain
    (padded with 0s to G bits; the chains rotate, see ``build_shift_chains``)), so the
    last gate LUT and the shift multiplexer share a LUT4. With no gate stage (depth 0) the chains
    load from the encode register (``in_bits`` when ``pre_encoded``). ``load`` is registered as
    copies (``load0..``, one per ``pipeline.SERIAL_LOAD_FANOUT`` chain bits plus two for the head,
    marked ``REPLICA_ATTR`` so synthesis keeps them apart). Where the chains load in ``in_valid``'s
    own cycle (pre-encoded with at most one gate stage) the core cannot register them; with
    ``in_valid_copies=True`` it then has the port ``in_valid_copies`` (``load_copies`` bits:
    copies of ``in_valid`` from separate flip-flops, e.g. ``StreamingEncoder(valid_copies=...)``)
    and uses them instead of ``in_valid`` (otherwise ``in_valid`` drives every chain bit; the
    attribute ``valid_copies`` is the port's width, 0 without it). The chain flip-flops belong
    to the core proper (with ``hierarchy=True`` they count as "gates"); the counters, the argmax
    scan and the control are the head (``SerialScorer`` submodule with ``hierarchy``).

    Structure: a register of the used threshold comparators, the optimised gate DAG with a
    register every ``layers_per_stage`` levels (tree head: signals skipping stages ride in delay
    registers),
    then the ``ClassifierHead`` logic (inlined: the Verilog is one flat module).

    Attributes: ``latency``, ``score_width``, ``layers_per_stage``, ``depth``, ``gate_stages``,
    ``graph`` (the optimised ``passes.Graph``), ``passes_report`` (rows of ``passes.optimize``;
    empty with ``optimize=False``), ``comparators`` (the (feature, threshold) pairs built).
    """

    def __init__(self, netlist: Netlist, *, layers_per_stage: int | None = None, optimize: bool = True,
                 popcount_levels_per_stage: int | None = None, pre_encoded: bool = False,
                 with_scores: bool = True, hierarchy: bool = False, head: str | None = None,
                 in_valid_copies: bool = False):
        netlist.validate()  # NetlistError (one line) for an invalid in-memory netlist
        self.netlist = netlist
        self.head = pipeline.check_head(head)
        self.layers_per_stage = pipeline.check_layers_per_stage(layers_per_stage, self.head, netlist.has_luts)
        self.popcount_levels_per_stage = pipeline.check_popcount_levels_per_stage(popcount_levels_per_stage)
        if optimize:
            self.graph, self.passes_report = passes.optimize(netlist)
        else:
            self.graph, self.passes_report = passes.normalize(netlist), []
        self.schedule = pipeline.schedule(self.graph, self.layers_per_stage,
                                          held=pipeline.held_registers(self.head))
        self.depth = self.schedule.depth
        self.gate_stages = self.schedule.stages
        self.classes = netlist.classes
        self.group_size = netlist.group_size
        self.score_width = netlist.score_width
        self.in_width = netlist.features * netlist.feature_width
        self.class_width = class_width(netlist.classes)
        self.pre_encoded = bool(pre_encoded)
        self.with_scores = bool(with_scores)
        self.hierarchy = bool(hierarchy)
        self.latency = pipeline.latency(depth=self.depth, layers_per_stage=self.layers_per_stage,
                                        group_size=netlist.group_size, classes=netlist.classes,
                                        popcount_levels_per_stage=self.popcount_levels_per_stage,
                                        pre_encoded=self.pre_encoded, head=self.head)
        self.sample_interval = pipeline.sample_interval(netlist.group_size, netlist.classes, self.head)
        self.input_hold_cycles = pipeline.input_hold_cycles(depth=self.depth, layers_per_stage=self.layers_per_stage,
                                                            pre_encoded=self.pre_encoded, head=self.head)
        n_bits = self.classes * self.group_size
        #: copies of the serial head's ``load`` (chains in groups of SERIAL_LOAD_FANOUT, the counters,
        #: the control)
        self.load_copies = max(1, -(-n_bits // pipeline.SERIAL_LOAD_FANOUT)) + 2 if self.head == "serial" else 0
        front = pipeline.serial_load_cycle(depth=self.depth, layers_per_stage=self.layers_per_stage,
                                           pre_encoded=self.pre_encoded) if self.head == "serial" else 1
        #: width of the ``in_valid_copies`` port (0: none)
        self.valid_copies = self.load_copies if (in_valid_copies and front == 0) else 0
        g, sch = self.graph, self.schedule
        self._enc_nodes = [n for n in range(1, g.first_gate) if sch.last_use[n] > 0]
        self.comparators = [g.inputs[n - 1] for n in self._enc_nodes]
        ports = {"in_valid": In(1)}
        if self.valid_copies:
            ports["in_valid_copies"] = In(self.valid_copies)
        if self.pre_encoded:
            ports["in_bits"] = In(len(self.comparators))
        else:
            ports["in_data"] = In(self.in_width)
        ports["out_valid"] = Out(1)
        ports["out_class"] = Out(self.class_width)
        if self.with_scores:
            ports["out_scores"] = Out(self.classes * self.score_width)
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        g, sch = self.graph, self.schedule
        W = self.netlist.feature_width
        f0 = g.first_gate
        front = (0 if self.pre_encoded else pipeline.ENCODE_STAGES) + sch.stages
        serial = self.head == "serial"
        held = sch.held
        if serial:  # the valid chain ends at the load cycle of the shift chains
            front = pipeline.serial_load_cycle(depth=self.depth, layers_per_stage=sch.layers_per_stage,
                                               pre_encoded=self.pre_encoded)

        # valid chain for the encode and gate stages (reset)
        if serial and front:
            # the load cycle's valid as copies (one per SERIAL_LOAD_FANOUT chain bits, one for the
            # counters and control), all registered from the same bit: the same timing, less fan-out
            if front > 1:
                vpipe = Signal(front - 1, name="valid_pipe")
                m.d.sync += vpipe.eq(Cat(self.in_valid, vpipe[:-1]))
                before = vpipe[-1]
            else:
                before = self.in_valid
            head_valid = [Signal(name=f"load{i}", attrs={pipeline.REPLICA_ATTR: 1})
                          for i in range(self.load_copies)]
            m.d.sync += [c.eq(before) for c in head_valid]
        elif serial and self.valid_copies:  # the load cycle is in_valid's: the caller's copies
            head_valid = [self.in_valid_copies[i] for i in range(self.valid_copies)]
        elif front:
            vpipe = Signal(front, name="valid_pipe")
            m.d.sync += vpipe.eq(Cat(self.in_valid, vpipe[:-1]))
            head_valid = vpipe[-1]
        else:
            head_valid = self.in_valid

        # stage 0: the used comparators, registered (pre-encoded: the caller's register)
        reg = {}  # node -> bit of the current stage's register
        if self.pre_encoded:
            reg = {n: self.in_bits[i] for i, n in enumerate(self._enc_nodes)}
        elif self._enc_nodes:
            enc = Signal(len(self._enc_nodes), name="enc", reset_less=True)
            load_enc = Cat(*(ge_const(self.in_data[fe * W:(fe + 1) * W], t) for fe, t in self.comparators))
            if held:  # the sample stays here until the next one (its gate stages read it directly)
                with m.If(self.in_valid):
                    m.d.sync += enc.eq(load_enc)
            else:
                m.d.sync += enc.eq(load_enc)
            reg = {n: enc[i] for i, n in enumerate(self._enc_nodes)}

        # gate stages
        gates_by_level: dict[int, list[int]] = {}
        for j in range(g.num_gates):
            gates_by_level.setdefault(int(sch.level[f0 + j]), []).append(j)
        for k in range(1, sch.stages + 1):
            comb = {}  # node -> bit of this stage's combinational level signals

            def operand(n):
                if n == passes.CONST:
                    return C(0, 1)
                return comb[n] if n in comb else reg[n]

            for lev in range((k - 1) * sch.layers_per_stage + 1, k * sch.layers_per_stage + 1):
                js = gates_by_level.get(lev, [])
                if not js:
                    continue
                sig = Signal(len(js), name=f"lv{lev}", reset_less=True)
                exprs = []
                for j in js:
                    op = g.op[j]
                    if op == passes.LUT:
                        table, ins = g.luts[j]
                        exprs.append(lut_expr(table, [operand(n) for n in ins]))
                        continue
                    a = operand(g.a[j]) if READS_A[op] else None
                    b = operand(g.b[j]) if READS_B[op] else None
                    exprs.append(gate_expr(op, a, b))
                m.d.comb += sig.eq(Cat(*exprs))
                for i, j in enumerate(js):
                    comb[f0 + j] = sig[i]
            if serial and k == sch.stages:  # merged into the shift chains below
                reg = {n: operand(n) for n in range(1, g.num_nodes) if sch.last_use[n] == sch.stages + 1}
                break
            alive = [int(n) for n in np.nonzero(sch.registered(k))[0]]
            new_reg = dict(reg) if held else {}  # held: earlier stages' registers stay readable
            if alive:
                st = Signal(len(alive), name=f"st{k}", reset_less=True)
                m.d.sync += st.eq(Cat(*(operand(n) for n in alive)))
                new_reg.update({n: st[i] for i, n in enumerate(alive)})
            reg = new_reg

        # class outputs (inverted literals and constants resolved here) into the head
        def output_bit(lit):
            n = lit >> 1
            if n == passes.CONST:
                return C(lit & 1, 1)
            return ~reg[n] if lit & 1 else reg[n]

        if serial:
            return self._serial_head(m, head_valid, reg)
        if self.hierarchy:  # the head as its own Verilog module (the board top counts its cells)
            from logicforge.hdl.head import ClassifierHead

            raw, invert = [], 0
            for i, lit in enumerate(g.outputs):
                n = lit >> 1
                raw.append(C(lit & 1, 1) if n == passes.CONST else reg[n])
                if n != passes.CONST and lit & 1:
                    invert |= 1 << i
            m.submodules.head = head = ClassifierHead(
                self.classes, self.group_size, popcount_levels_per_stage=self.popcount_levels_per_stage,
                invert=invert, with_scores=self.with_scores)
            m.d.comb += [head.in_valid.eq(head_valid), head.in_bits.eq(Cat(*raw)),
                         self.out_valid.eq(head.out_valid), self.out_class.eq(head.out_class)]
            if self.with_scores:
                m.d.comb += self.out_scores.eq(head.out_scores)
            return m
        bits = Signal(len(g.outputs), name="class_bits")
        m.d.comb += bits.eq(Cat(*(output_bit(o) for o in g.outputs)))
        out_valid, out_class, out_scores = build_head(
            m, head_valid, bits, self.classes, self.group_size,
            popcount_levels_per_stage=self.popcount_levels_per_stage, with_scores=self.with_scores)
        m.d.comb += [self.out_valid.eq(out_valid), self.out_class.eq(out_class)]
        if self.with_scores:
            m.d.comb += self.out_scores.eq(out_scores)
        return m

    def _serial_head(self, m, load, reg):
        """The shift chains (loading ``reg``'s output literals: the last stage's combinational
        values, or registered bits with no gate stage) and the serial scorer. ``load``: the load
        cycle's valid, a list of register copies (the last two for the counters and the control) or ``in_valid``."""
        g, K, G = self.graph, self.classes, self.group_size
        # A class's count does not depend on the order of its chain, so each chain runs in the
        # order of the input bits its literals start from (a gate's first operand, followed down
        # to an input): neighbours in the chain then read neighbouring features, which the
        # streaming encoder's registers keep together, and the placer need not stretch a chain
        # across the chip between unrelated sources.
        anchor = np.arange(g.num_nodes)
        for j in range(g.num_gates):
            srcs = [n for n in g.reads(j) if n != passes.CONST]
            if srcs:
                anchor[g.first_gate + j] = anchor[srcs[0]]
        class_bits, presets = [], []
        for k in range(K):
            lits, ones = [], 0
            for lit in g.outputs[k * G:(k + 1) * G]:
                n = lit >> 1
                if n == passes.CONST:
                    ones += lit & 1
                else:
                    lits.append(lit)
            lits.sort(key=lambda lit: (anchor[lit >> 1], lit))
            class_bits.append([~reg[lit >> 1] if lit & 1 else reg[lit >> 1] for lit in lits])
            presets.append(ones)
        n_bits = sum(len(b) for b in class_bits)
        if isinstance(load, list):  # copies of the load register: chains, then counters, control
            chain_loads, load = load[:-2], load[-2:]
        else:
            chain_loads = [load]
        tails = build_shift_chains(m, chain_loads, class_bits, length=G,
                                   fanout=-(-max(K * G, 1) // len(chain_loads)))
        if self.hierarchy:
            loads = load if isinstance(load, list) else [load]
            m.submodules.head = sc = SerialScorer(K, G, presets=presets, with_scores=self.with_scores,
                                                  load_copies=len(loads))
            m.d.comb += [sc.load.eq(Cat(*loads)), sc.tails.eq(Cat(*tails))]
            out_valid, out_class, out_scores = sc.out_valid, sc.out_class, sc.out_scores if self.with_scores else None
        else:
            out_valid, out_class, out_scores, _ = build_serial_scorer(m, load, tails, K, G, presets=presets,
                                                                      with_scores=self.with_scores)
        m.d.comb += [self.out_valid.eq(out_valid), self.out_class.eq(out_class)]
        if self.with_scores:
            m.d.comb += self.out_scores.eq(out_scores)
        return m

    def info(self) -> dict:
        """Facts about the generated core (written next to core.v as core.json)."""
        first = self.passes_report[0]["gates_before"] if self.passes_report else self.graph.num_gates
        return {
            "module": "logicnet_core",
            "latency_cycles": self.latency,
            "head": self.head,
            "sample_interval_cycles": self.sample_interval,
            "input_hold_cycles": self.input_hold_cycles,
            "pre_encoded": self.pre_encoded,
            "layers_per_stage": self.layers_per_stage,
            "popcount_levels_per_stage": self.popcount_levels_per_stage,
            "depth": self.depth,
            "gate_stages": self.gate_stages,
            "features": self.netlist.features,
            "feature_width": self.netlist.feature_width,
            "in_width": self.in_width,
            "classes": self.classes,
            "group_size": self.group_size,
            "score_width": self.score_width,
            "class_width": self.class_width,
            "out_scores_width": self.classes * self.score_width,
            "gates_before": int(first),
            "gates_after": self.graph.num_gates,
            "passes": [{"name": r["name"], "round": r["round"], "gates_before": r["gates_before"],
                        "gates_after": r["gates_after"], "inputs_before": r["inputs_before"],
                        "inputs_after": r["inputs_after"]} for r in self.passes_report],
            "comparators": len(self.comparators),
            "comparator_list": [[int(f), int(t)] for f, t in self.comparators],
            "ports": {"clk": 1, "rst": 1, **{name: len(getattr(self, name))
                                             for name in self.signature.members}},
        }
