"""cocotb fuzz bench of the board top ``uart_top`` (``ClassifierTop``): a host that misbehaves.

Kept apart from ``uart_top_tb.py`` (the functional bench). Reads ``$LOGICFORGE_UART_FUZZ``, a JSON
file with ``divisor``, ``events`` and ``expected`` (the reply bytes a correct top must send, in
order, computed by the test's protocol model from the reference evaluator). Events:

* ``["byte", b]``: an 8N1 frame;
* ``["ferr", b]``: a frame whose stop bit is low (framing error);
* ``["break", n]``: the line held low for ``n`` cycles (at least 11 bit times: a framing error);
* ``["glitch", n]``: a low pulse of ``n`` cycles, shorter than half a bit (must be ignored);
* ``["pause", n]``: the line idle (high) for ``n`` cycles.

The bench asserts that exactly the expected replies arrive, in order, with good stop bits, and
that the top keeps working (no hang: a final well-formed sample gets its reply).
"""

from __future__ import annotations

import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge

ENV = "LOGICFORGE_UART_FUZZ"


async def _frame(dut, div: int, byte: int, stop: int) -> None:
    for bit in [0, *((byte >> i) & 1 for i in range(8)), stop]:
        dut.rx.value = bit
        await ClockCycles(dut.clk, div)
    dut.rx.value = 1


async def _monitor(dut, div: int, received: list) -> None:
    while True:
        await FallingEdge(dut.tx)
        await ClockCycles(dut.clk, div // 2)
        assert int(dut.tx.value) == 0, "tx: start bit shorter than half a bit"
        byte = 0
        for i in range(8):
            await ClockCycles(dut.clk, div)
            byte |= int(dut.tx.value) << i
        await ClockCycles(dut.clk, div)
        assert int(dut.tx.value) == 1, f"tx: stop bit low after byte {byte:#x}"
        received.append(byte)


@cocotb.test()
async def misbehaving_host(dut):
    with open(os.environ[ENV]) as fh:
        cfg = json.load(fh)
    div = cfg["divisor"]
    Clock(dut.clk, 10, unit="ns").start()
    dut.rx.value = 1
    dut.rst.value = 1
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 4)
    received: list[int] = []
    cocotb.start_soon(_monitor(dut, div, received))
    for kind, n in cfg["events"]:
        if kind == "byte":
            await _frame(dut, div, n, 1)
        elif kind == "ferr":
            await _frame(dut, div, n, 0)
            await ClockCycles(dut.clk, div)
        elif kind in ("break", "glitch"):
            dut.rx.value = 0
            await ClockCycles(dut.clk, n)
            dut.rx.value = 1
            await ClockCycles(dut.clk, 2 * div)
        elif kind == "pause":
            await ClockCycles(dut.clk, n)
        else:
            raise AssertionError(f"unknown event {kind}")
    await ClockCycles(dut.clk, 40 * div)
    expected = cfg["expected"]
    assert received == expected, f"replies {received}, expected {expected}"
