"""The board top's parity over its UART: real samples in as bytes, the reply byte checked against the
reference class.

``run_top_parity`` writes the board top (module ``uart_top``, the ``ClassifierTop`` that the
iCEBreaker wraps, with a small baud divisor), builds it with Verilator (cached, ``sim.runner``),
and lets the cocotb bench ``logicforge.sim.uart_parity_tb`` play the host with cocotbext-uart: every
sample goes over ``rx`` exactly as a host sends it, and every byte on ``tx`` is compared with the
reference evaluator's class on the original netlist. The top itself is not imported here (``sim``
may not import ``boards``): the caller passes ``generate`` and ``encode`` in (the command layer
passes ``boards.top.top_verilog`` and ``boards.top.encode_sample``).

Two ways to send (``stream``):

* **stream** (default): samples back to back with no idle time on the line, as fast as the wire
  allows; the protocol allows it for samples of two or more bytes (docs/boards.md);
* **request**: each sample waits for its reply, as a cautious host does; always used for
  one-byte samples.

Replies are paired with samples by time (``check_replies``), so a lost, extra or late reply is
named as such instead of shifting every later comparison.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Callable

import numpy as np

from logicforge.errors import LogicforgeError
from logicforge.fileio import write_npz, write_text

#: The cocotb bench that plays the host.
TOP_TEST_MODULE = "logicforge.sim.uart_parity_tb"
#: The ports of the simulation top ``uart_top`` that the benches use.
TOP_PORTS = ("clk", "rst", "rx", "tx", "class_leds", "activity", "uart_error")
#: Clock cycles per UART bit in simulation. The smallest divisor the receiver takes (4) already
#: costs less simulation than the Python that drives the line; docs/simulation.md has the measurements.
DEFAULT_DIVISOR = 4
#: UART frame: start bit, 8 data bits, stop bit.
FRAME_BITS = 10
#: A reply must be complete within this many bit times (plus the top's latency) after its sample.
REPLY_BITS = 40


def run_top_parity(netlist, x_test=None, *, generate: Callable, encode: Callable,
                   build_dir: str | os.PathLike, random: int = 0, seed: int = 0, stream: bool = True,
                   reference: Callable | None = None, log: Callable[[str], None] | None = None) -> dict:
    """Send samples to the board top over its UART in Verilator; return the report.

    Samples: every row of ``x_test`` ((n, F) quantised features, may be None) and ``random``
    uniform random feature vectors (seeded by ``seed``). ``generate(netlist) -> (verilog, info)``
    gives the top (``info``: ``module``, ``divisor``, ``latency_cycles``, ``bytes_per_sample``,
    ``led_bits``, as ``boards.top.top_verilog``); ``encode(netlist, features) -> bytes`` is the
    wire protocol (``boards.top.encode_sample``); ``reference(netlist, x) -> (scores, classes)``
    defaults to the reference evaluator on ``netlist``.

    Everything lives in ``build_dir`` (e.g. ``build/<name>/sim_top``): the top's Verilog, the
    cached Verilator build, ``stimulus.npz``, ``observed.npz``, logs and ``report.json``. Raises
    ``LogicforgeError`` (one line, the first wrong reply) unless every sample got exactly one reply,
    equal to the reference class, with the LEDs showing it. The first mismatching sample is saved
    as ``first_mismatch.npy`` ((1, F)), for ``logicforge sim --input ... --random 0`` on the core.
    """
    from logicforge.netlist import generate as gen
    from logicforge.netlist import reference as ref
    from logicforge.sim.parity import checked_samples
    from logicforge.sim.runner import (ENV_OBSERVED, ENV_STIMULUS, conclude, handoff_paths, run_cocotb,
                                       take_handoff)

    say = log or (lambda _msg: None)
    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    (build_dir / "report.json").unlink(missing_ok=True)  # never leave an old verdict behind
    (build_dir / "first_mismatch.npy").unlink(missing_ok=True)
    x_test = checked_samples(netlist, x_test, random)

    start = time.perf_counter()
    verilog, info = generate(netlist)
    module = info["module"]
    source = build_dir / f"{module}.v"
    if not source.is_file() or source.read_text() != verilog:
        write_text(source, verilog)
    generate_seconds = time.perf_counter() - start

    x_all = np.concatenate([x_test, gen.random_features(np.random.default_rng(seed), netlist, random)])
    _, expected = (reference or ref.evaluate)(netlist, x_all)
    data = np.array([np.frombuffer(encode(netlist, row), dtype=np.uint8) for row in x_all], dtype=np.uint8)
    data = data.reshape(len(x_all), -1)
    if data.shape[1] != int(info["bytes_per_sample"]):
        raise LogicforgeError(f"encode gives {data.shape[1]} bytes per sample, the top expects "
                              f"{info['bytes_per_sample']}")
    streamed = bool(stream and data.shape[1] >= 2)
    stim_path, obs_path = handoff_paths(build_dir)
    write_npz(stim_path, data=data, expected=np.asarray(expected, dtype=np.int64),
              divisor=int(info["divisor"]), latency=int(info["latency_cycles"]),
              led_bits=int(info["led_bits"]), stream=streamed, n_test=len(x_test), n_random=int(random))
    mode = "stream" if streamed else "request"
    say(f"sim --top: {len(x_all)} samples of {data.shape[1]} bytes over the UART ({mode}, divisor "
        f"{info['divisor']}); {module} latency {info['latency_cycles']} cycles; Verilator model in "
        f"{build_dir} (rebuilt only when {source.name} changes)")
    result = run_cocotb([source], module, TOP_TEST_MODULE, build_dir,
                        {ENV_STIMULUS: str(stim_path), ENV_OBSERVED: str(obs_path)},
                        public_all=False, public_ports=TOP_PORTS, check=False, seed=seed)
    if result.built:
        say(f"sim --top: Verilator build took {result.build_seconds:.1f} s")
    stim, obs = take_handoff(stim_path, obs_path, result, build_dir)
    verdict = check_replies(stim, obs)

    report = {
        "toplevel": module,
        "passed": bool(verdict["ok"] and result.ok),
        **{k: verdict[k] for k in ("samples", "replies", "matches", "mismatches", "missing", "extra",
                                   "led_errors", "activity_errors", "uart_errors")},
        "test_samples": len(x_test),
        "random_samples": int(random),
        "seed": seed,
        "mode": mode,
        "divisor": int(info["divisor"]),
        "bytes_per_sample": int(data.shape[1]),
        "latency_cycles": int(info["latency_cycles"]),
        "encoder": info.get("encoder"),
        "wire_cycles_per_sample": int(data.shape[1]) * FRAME_BITS * int(info["divisor"]),
        "cycles_per_sample": verdict["cycles_per_sample"],
        "reply_delay_cycles": verdict["reply_delay_cycles"],
        "cycles": int(obs["t_end"]),
        "verilog_sha256": hashlib.sha256(verilog.encode()).hexdigest(),
        "build_cached": not result.built,
        "generate_seconds": round(generate_seconds, 3),
        "build_seconds": round(result.build_seconds, 3),
        "sim_seconds": round(result.test_seconds, 3),
        "send_seconds": round(float(obs["send_seconds"]), 3),
        "seconds_per_sample": round(float(obs["send_seconds"]) / len(x_all), 5),
        "cocotb": {"tests": result.tests, "failures": result.failures, "messages": result.messages},
        "message": verdict["message"],
        "first_mismatch": verdict["first_mismatch"],
    }
    first = verdict["first_mismatch"]
    if first is not None:
        np.save(build_dir / "first_mismatch.npy", x_all[first["sample"]:first["sample"] + 1])
    return conclude(build_dir, report, verdict, result)


def reply_owner(stim: dict, sample_end: np.ndarray, reply_cycle: np.ndarray) -> np.ndarray:
    """For each reply, the sample it answers (-1: none): the last sample whose last stop bit ended
    more than the top's latency before the reply was decoded.

    A reply leaves the top at least its latency after the sample's last byte, and (the protocol's
    promise for samples of two or more bytes, docs/boards.md) before the next sample is in, so
    pairing by time and pairing by order agree for a correct top; for a wrong one, a lost or late
    reply is found where it happened.
    """
    return np.searchsorted(np.asarray(sample_end) + int(stim["latency"]), reply_cycle, side="left") - 1


def check_replies(stim: dict, obs: dict) -> dict:
    """Judge a run. ``stim``: the arrays of stimulus.npz; ``obs``: those of observed.npz
    (``reply_byte``, ``reply_leds``, ``reply_activity``, ``reply_error``, ``reply_cycle`` per
    reply; ``sample_end`` per sample; ``activity0``, ``t_start``, ``t_end``, ``send_seconds``).

    Rules: every sample gets exactly one reply, within ``REPLY_BITS`` bit times plus the latency;
    the reply byte is the reference class; the class LEDs show its low ``led_bits`` bits; the
    activity LED toggles with every reply; ``uart_error`` stays low. Returns a dict with ``ok``,
    ``message`` (one line), counts, ``reply_delay_cycles`` (min, max), ``cycles_per_sample`` and
    ``first_mismatch`` (or None).
    """
    from logicforge.sim.stimulus import sample_kind

    expected = np.asarray(stim["expected"])
    n = len(expected)
    div, latency = int(stim["divisor"]), int(stim["latency"])
    byte = np.asarray(obs["reply_byte"], dtype=np.int64)
    cycle = np.asarray(obs["reply_cycle"], dtype=np.int64)
    end = np.asarray(obs["sample_end"], dtype=np.int64)
    owner = reply_owner(stim, end, cycle)
    delay = cycle - end[np.maximum(owner, 0)] if n else cycle
    on_time = (owner >= 0) & (delay <= latency + REPLY_BITS * div)
    owner = np.where(on_time, owner, -1)

    replies_of = np.bincount(owner[owner >= 0], minlength=n)
    missing = int(np.count_nonzero(replies_of == 0))
    first_reply = np.full(n, -1, dtype=np.int64)
    for r in range(len(owner) - 1, -1, -1):  # the earliest reply of each sample
        if owner[r] >= 0:
            first_reply[owner[r]] = r
    extra = len(byte) - int(np.count_nonzero(first_reply >= 0))
    answered = np.nonzero(first_reply >= 0)[0]
    got = byte[first_reply[answered]]
    wrong = answered[got != expected[answered]]

    mask = (1 << int(stim["led_bits"])) - 1
    led_errors = int(np.count_nonzero(np.asarray(obs["reply_leds"]) != (byte & mask)))
    activity = np.concatenate([[int(obs["activity0"])], np.asarray(obs["reply_activity"], dtype=np.int64)])
    activity_errors = int(np.count_nonzero(activity[1:] == activity[:-1]))
    uart_errors = int(np.count_nonzero(obs["reply_error"]))

    first_mismatch = None
    if len(wrong):
        s = int(wrong[0])
        r = int(first_reply[s])
        first_mismatch = {"sample": s, "kind": sample_kind(stim, s), "expected_class": int(expected[s]),
                          "got": int(byte[r]), "reply_cycle": int(cycle[r]), "sample_end_cycle": int(end[s])}
    if first_mismatch is not None:
        f = first_mismatch
        message = (f"{len(wrong)} of {len(answered)} replies differ from the reference class; first: "
                   f"{f['kind']}: expected class {f['expected_class']}, got {f['got']}")
    elif missing or extra:
        first = int(np.nonzero(replies_of == 0)[0][0]) if missing else None
        message = (f"{n} samples sent, {len(byte)} replies: {missing} samples without a reply"
                   + (f" (first: {sample_kind(stim, first)})" if first is not None else "")
                   + f", {extra} replies too many or too late")
    elif led_errors:
        message = f"class LEDs differ from the reply byte at {led_errors} of {len(byte)} replies"
    elif activity_errors:
        message = f"the activity LED did not toggle at {activity_errors} of {len(byte)} replies"
    elif uart_errors:
        message = f"uart_error was high at {uart_errors} of {len(byte)} replies (no framing error was sent)"
    else:
        message = f"top: {n}/{n} replies equal the reference class"
    ok = n > 0 and not (len(wrong) or missing or extra or led_errors or activity_errors or uart_errors)
    good = delay[on_time] if len(delay) else delay
    return {
        "ok": bool(ok),
        "message": message,
        "samples": n,
        "replies": int(len(byte)),
        "matches": int(len(answered) - len(wrong)),
        "mismatches": int(len(wrong)),
        "missing": missing,
        "extra": int(extra),
        "led_errors": led_errors,
        "activity_errors": activity_errors,
        "uart_errors": uart_errors,
        "reply_delay_cycles": [int(good.min()), int(good.max())] if len(good) else None,
        "cycles_per_sample": round((int(end[-1]) - int(obs["t_start"])) / n, 1) if n else None,
        "first_mismatch": first_mismatch,
    }
