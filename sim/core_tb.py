"""cocotb test bench for ``logicnet_core``: stream a prepared schedule through it, one entry per clock.

Run by ``logicforge.sim.parity.run_parity`` inside the Verilator process; not imported otherwise.
It reads the schedule and the reference results from the file named by $LOGICFORGE_SIM_STIMULUS,
writes what the core put out to $LOGICFORGE_SIM_OBSERVED, and fails (so cocotb's results file says
FAIL) unless ``logicforge.sim.stimulus.check`` accepts the run.

The per-cycle Python work is kept to a minimum: input words are packed before the clock starts,
inputs are written only when they change, and class and scores are read only when ``out_valid``
is high. See ``logicforge.sim.stimulus`` for the timing convention and the reset contract.
"""

from __future__ import annotations

import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge

from logicforge.fileio import write_npz
from logicforge.sim import stimulus as st
from logicforge.sim.runner import ENV_OBSERVED, ENV_STIMULUS, read_npz


@cocotb.test()
async def stream_parity(dut):
    """Every sample of the schedule through the core; outputs checked against the reference."""
    stim = read_npz(os.environ[ENV_STIMULUS])
    width = int(stim["feature_width"])
    classes = int(stim["classes"])
    score_width = int(stim["score_width"])
    words = st.pack_rows(stim["features"], width)
    valid = stim["valid"].tolist()
    rst = stim["rst"].tolist()
    sample = stim["sample"].tolist()
    t_len = len(valid)

    clk, in_valid, in_data, rst_sig = dut.clk, dut.in_valid, dut.in_data, dut.rst
    out_valid, out_class, out_scores = dut.out_valid, dut.out_class, dut.out_scores
    in_valid.value = 0
    rst_sig.value = 0
    in_data.value = 0
    Clock(clk, 10, unit="ns").start(start_high=False)
    falling = FallingEdge(clk)

    seen_valid = np.zeros(t_len, dtype=np.uint8)
    seen_at: list[int] = []
    seen_class: list[int] = []
    seen_scores: list[int] = []
    cur_valid = cur_rst = 0
    for t in range(t_len):
        await falling
        if out_valid.value:
            seen_at.append(t)
            seen_class.append(int(out_class.value))
            seen_scores.append(int(out_scores.value))
        v, r, s = valid[t], rst[t], sample[t]
        if v != cur_valid:
            in_valid.value = cur_valid = v
        if r != cur_rst:
            rst_sig.value = cur_rst = r
        if s >= 0:
            in_data.value = words[s]

    seen_valid[seen_at] = 1
    obs_class = np.zeros(t_len, dtype=np.int64)
    obs_class[seen_at] = seen_class
    obs_scores = np.zeros((t_len, classes), dtype=np.int64)
    obs_scores[seen_at] = st.unpack_ints(seen_scores, classes, score_width)
    # compressed: with a serial head most cycles carry no output (millions of zero rows)
    write_npz(os.environ[ENV_OBSERVED], compressed_npz=True, out_valid=seen_valid, out_class=obs_class, out_scores=obs_scores)

    result = st.check(stim, {"out_valid": seen_valid, "out_class": obs_class, "out_scores": obs_scores})
    dut._log.info("%s", result["message"])
    assert result["ok"], result["message"]
