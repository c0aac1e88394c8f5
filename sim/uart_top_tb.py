"""cocotb tests of the board top ``uart_top`` (``logicforge.boards.top.ClassifierTop``) over its UART.

The host side is modelled here: ``uart_send`` bit-bangs 8N1 frames onto ``rx`` and ``uart_monitor``
decodes every frame on ``tx``, both timed in clock cycles (``divisor`` per bit).

Stimulus comes from the JSON file named by ``$LOGICFORGE_UART_TB`` (written by the test that runs
this module, e.g. tests/test_board_top.py): ``divisor``, ``gap_timeout_cycles``, ``led_bits``,
``samples`` (a list of byte lists, one sample each, exactly as a host sends them), ``expected``
(the reference evaluator's class per sample) and ``junk`` (a few bytes of a partial sample).
"""

from __future__ import annotations

import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge

ENV = "LOGICFORGE_UART_TB"


def _load():
    with open(os.environ[ENV]) as fh:
        return json.load(fh)


async def uart_send(dut, div: int, data, *, stop_bit: int = 1) -> None:
    """Send bytes on ``dut.rx``: start bit, 8 data bits LSB first, stop bit, ``div`` cycles each."""
    for byte in data:
        for bit in [0, *((byte >> i) & 1 for i in range(8)), stop_bit]:
            dut.rx.value = bit
            await ClockCycles(dut.clk, div)
    dut.rx.value = 1


async def uart_monitor(dut, div: int, received: list) -> None:
    """Decode frames on ``dut.tx`` forever; append (byte, class_leds, activity) per frame.

    The LED outputs are sampled when the stop bit is checked.
    """
    while True:
        await FallingEdge(dut.tx)
        await ClockCycles(dut.clk, div // 2)
        assert int(dut.tx.value) == 0, "tx: start bit shorter than half a bit"
        byte = 0
        for i in range(8):
            await ClockCycles(dut.clk, div)
            byte |= int(dut.tx.value) << i
        await ClockCycles(dut.clk, div)
        assert int(dut.tx.value) == 1, f"tx: framing error (stop bit low) after byte {byte:#x}"
        received.append((byte, int(dut.class_leds.value), int(dut.activity.value)))


async def start(dut, cfg):
    """Clock, reset, idle line, and a running monitor; return the list the monitor fills."""
    Clock(dut.clk, 10, unit="ns").start()
    dut.rx.value = 1
    dut.rst.value = 1
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 4)
    received = []
    cocotb.start_soon(uart_monitor(dut, cfg["divisor"], received))
    return received


async def wait_replies(dut, cfg, received: list, n: int) -> None:
    """Wait until ``n`` replies are in, failing after a generous bound."""
    div = cfg["divisor"]
    for _ in range(200):
        if len(received) >= n:
            return
        await ClockCycles(dut.clk, 10 * div)
    raise AssertionError(f"expected {n} replies, got {len(received)}")


@cocotb.test()
async def request_response(dut):
    """One sample at a time: the reply byte and the LEDs equal the reference class."""
    cfg = _load()
    div, mask = cfg["divisor"], (1 << cfg["led_bits"]) - 1
    received = await start(dut, cfg)
    activity = int(dut.activity.value)
    for i, (sample, cls) in enumerate(zip(cfg["samples"], cfg["expected"])):
        await uart_send(dut, div, sample)
        await wait_replies(dut, cfg, received, i + 1)
        byte, leds, act = received[i]
        assert byte == cls, f"sample {i}: reply {byte}, reference class {cls}"
        assert leds == cls & mask, f"sample {i}: class_leds {leds:#x}, expected {cls & mask:#x}"
        assert act != activity, f"sample {i}: activity LED did not toggle"
        activity = act
        assert int(dut.uart_error.value) == 0
    await ClockCycles(dut.clk, 30 * div)
    assert len(received) == len(cfg["samples"]), "unexpected extra reply"


@cocotb.test()
async def streaming(dut):
    """Samples sent back to back, without waiting: every reply arrives, in order."""
    cfg = _load()
    div = cfg["divisor"]
    received = await start(dut, cfg)
    for sample in cfg["samples"]:
        await uart_send(dut, div, sample)
    await wait_replies(dut, cfg, received, len(cfg["samples"]))
    await ClockCycles(dut.clk, 30 * div)
    assert [r[0] for r in received] == cfg["expected"]


@cocotb.test()
async def resync_after_pause(dut):
    """A partial sample followed by a pause longer than the gap timeout is dropped."""
    cfg = _load()
    div = cfg["divisor"]
    received = await start(dut, cfg)
    await uart_send(dut, div, cfg["junk"])
    await ClockCycles(dut.clk, cfg["gap_timeout_cycles"] + 20 * div)
    assert not received, "a partial sample produced a reply"
    await uart_send(dut, div, cfg["samples"][0])
    await wait_replies(dut, cfg, received, 1)
    await ClockCycles(dut.clk, 30 * div)
    assert [r[0] for r in received] == [cfg["expected"][0]]


@cocotb.test()
async def framing_error(dut):
    """A frame with a low stop bit sets uart_error and drops the partial sample; the next sample
    is classified correctly and clears uart_error."""
    cfg = _load()
    div = cfg["divisor"]
    received = await start(dut, cfg)
    await uart_send(dut, div, cfg["junk"][:1])  # a good byte: now mid-sample
    await uart_send(dut, div, [0x55], stop_bit=0)
    dut.rx.value = 0  # hold a break for a while
    await ClockCycles(dut.clk, 3 * div)
    dut.rx.value = 1
    await ClockCycles(dut.clk, 2 * div)
    assert int(dut.uart_error.value) == 1, "uart_error not set by a framing error"
    await uart_send(dut, div, cfg["samples"][1])
    await wait_replies(dut, cfg, received, 1)
    await ClockCycles(dut.clk, 30 * div)
    assert [r[0] for r in received] == [cfg["expected"][1]]
    assert int(dut.uart_error.value) == 0, "uart_error not cleared by a classified sample"
