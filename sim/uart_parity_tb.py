"""cocotb bench for ``logicforge.sim.uart_parity``: a host sends every sample to ``uart_top`` over
its UART (cocotbext-uart, through ``uart_top_tb.open_host``) and records every reply.

Run by ``run_top_parity`` inside the Verilator process; not imported otherwise. Reads the samples
(as wire bytes) and the reference classes from $LOGICFORGE_SIM_STIMULUS, writes the replies (byte,
LEDs, activity, uart_error, cycle) and when each sample's last stop bit ended to
$LOGICFORGE_SIM_OBSERVED, and fails unless ``uart_parity.check_replies`` accepts them.

Little Python per bit: the source sends from its queue with one timer per bit, the clock runs in
the simulator (cocotb's C++ clock), and in stream mode the bench tops the queue up once per
sample time instead of waiting on clock edges.
"""

from __future__ import annotations

import os
import time

import cocotb
import numpy as np
from cocotb.triggers import Timer

from logicforge.fileio import write_npz
from logicforge.sim.runner import ENV_OBSERVED, ENV_STIMULUS, read_npz
from logicforge.sim.uart_parity import FRAME_BITS, REPLY_BITS, check_replies
from logicforge.sim.uart_top_tb import CLOCK_NS, now, open_host


async def _until(host, count: int, cycles: int, step: int) -> None:
    """Wait until ``count`` replies are in or ``cycles`` have passed (checking every ``step``)."""
    deadline = now() + cycles
    while len(host.received) < count and now() < deadline:
        await Timer(step * CLOCK_NS, "ns")


@cocotb.test()
async def classify_over_uart(dut):
    """Every sample over rx; every reply on tx equals the reference class."""
    stim = read_npz(os.environ[ENV_STIMULUS])
    data = stim["data"]
    n, nbytes = data.shape
    div, latency = int(stim["divisor"]), int(stim["latency"])
    bit = div
    period = nbytes * FRAME_BITS * div  # clock cycles of one sample on the wire
    reply_bound = latency + REPLY_BITS * bit
    host = await open_host(dut, div, quiet=True)
    source = host.source
    activity0 = int(dut.activity.value)
    rows = [row.tobytes() for row in data]
    sample_end = np.zeros(n, dtype=np.int64)

    wall = time.perf_counter()
    t_start = now()
    if bool(stim["stream"]):
        # Back to back: the queue always holds the rest of one sample or more, so the line never
        # idles; the source needs exactly ``period`` cycles per sample.
        for i, row in enumerate(rows):
            source.write_nowait(row)
            sample_end[i] = t_start + (i + 1) * period
            if source.count() > 2 * nbytes:
                await Timer(period * CLOCK_NS, "ns")
        await source.wait()
        assert now() == sample_end[-1], (f"the host's stream had gaps: {now() - t_start} cycles "
                                         f"for {n} samples of {period}")
    else:
        for i, row in enumerate(rows):
            await source.write(row)
            await source.wait()
            sample_end[i] = now()
            await _until(host, i + 1, reply_bound, 10 * bit)
    await _until(host, n, reply_bound, 10 * bit)
    await Timer((2 * FRAME_BITS * bit + latency) * CLOCK_NS, "ns")  # room for a reply too many
    send_seconds = time.perf_counter() - wall

    got = host.received
    obs = {
        "reply_byte": np.array([r.byte for r in got], dtype=np.int64),
        "reply_leds": np.array([r.leds for r in got], dtype=np.int64),
        "reply_activity": np.array([r.activity for r in got], dtype=np.int64),
        "reply_error": np.array([r.uart_error for r in got], dtype=np.int64),
        "reply_cycle": np.array([r.cycle for r in got], dtype=np.int64),
        "sample_end": sample_end,
        "activity0": activity0,
        "t_start": t_start,
        "t_end": now(),
        "send_seconds": send_seconds,
    }
    write_npz(os.environ[ENV_OBSERVED], **obs)
    verdict = check_replies(stim, obs)
    dut._log.info("%s", verdict["message"])
    assert verdict["ok"], verdict["message"]
