"""Hypothesis fuzzing of the board top's UART byte stream in Verilator (``sim/uart_fuzz_tb.py``):
garbage bytes, breaks, framing errors, glitches and pauses. A Python model of the protocol
(docs/boards.md) and the reference evaluator say which replies a correct top sends; the bench
checks that exactly those arrive. Budget: 3 streams in CI, 40 with ``make fuzz``."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis is a dev extra (pip install -e .[dev])")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as hs  # noqa: E402

from logicforge.boards.top import top_verilog  # noqa: E402
from logicforge.netlist import reference  # noqa: E402
from logicforge.netlist.generate import random_netlist  # noqa: E402
from logicforge.sim.uart_parity import TOP_PORTS  # noqa: E402

BAUD, CLK_HZ, GAP = 1_000_000, 8_000_000, 400  # divisor 8
EXAMPLES = 40 if os.environ.get("LOGICFORGE_FUZZ_PROFILE") == "long" else 3
NET = random_netlist(np.random.default_rng(31), features=3, feature_width=6, thresholds_per_feature=4,
                     layer_widths=(24,), classes=5, group_size=3)


@pytest.fixture(scope="module")
def top(tmp_path_factory):
    work = tmp_path_factory.mktemp("uart_fuzz")
    text, info = top_verilog(NET, clk_hz=CLK_HZ, baud=BAUD, layers_per_stage=2, gap_timeout_cycles=GAP)
    (work / "uart_top.v").write_text(text)
    return work, info


def expected_replies(events, info) -> list[int]:
    """The protocol: bytes collect into samples of F * ceil(W/8) bytes; a framing error or break
    drops the partial sample, so does a pause longer than the gap timeout; glitches and short
    pauses change nothing. Each complete sample is answered with its reference class."""
    n_bytes, mask = info["bytes_per_sample"], (1 << NET.feature_width) - 1
    buf, samples = [], []
    for kind, n in events:
        if kind == "byte":
            buf.append(n)
            if len(buf) == n_bytes:
                samples.append([b & mask for b in buf])
                buf = []
        elif kind in ("ferr", "break") or (kind == "pause" and n > info["gap_timeout_cycles"]):
            buf = []
    if not samples:
        return []
    return [int(c) for c in reference.evaluate(NET, np.array(samples, dtype=np.int64))[1]]


def events_strategy(div: int, gap: int):
    byte = hs.tuples(hs.just("byte"), hs.integers(0, 255))
    return hs.lists(hs.one_of(
        byte, byte, byte, byte,
        hs.tuples(hs.just("ferr"), hs.integers(0, 255)),
        hs.tuples(hs.just("break"), hs.integers(11 * div, 30 * div)),
        hs.tuples(hs.just("glitch"), hs.integers(1, div // 2 - 2)),
        hs.tuples(hs.just("pause"), hs.one_of(hs.integers(1, 2 * div), hs.integers(gap + 20 * div, gap + 40 * div))),
    ), min_size=10, max_size=50)


@pytest.mark.slow
@pytest.mark.verilator
@settings(max_examples=EXAMPLES)
@given(data=hs.data())
def test_fuzz_uart_stream(top, data):
    from logicforge.sim.runner import run_cocotb

    work, info = top
    div = info["divisor"]
    events = data.draw(events_strategy(div, info["gap_timeout_cycles"]))
    # end with a pause and one well-formed sample: the top must still answer
    events = [*events, ["pause", info["gap_timeout_cycles"] + 20 * div],
              *[["byte", b] for b in data.draw(hs.lists(hs.integers(0, 63), min_size=3, max_size=3))]]
    events = [list(e) for e in events]
    cfg = {"divisor": div, "events": events, "expected": expected_replies(events, info)}
    (work / "fuzz.json").write_text(json.dumps(cfg))
    result = run_cocotb([work / "uart_top.v"], "uart_top", "logicforge.sim.uart_fuzz_tb", work,
                        {"LOGICFORGE_UART_FUZZ": str(work / "fuzz.json")}, public_all=False,
                        public_ports=TOP_PORTS, check=False)
    assert result.tests == 1
    assert result.failures == 0, f"{result.messages}; events {events}"
