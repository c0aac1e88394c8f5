"""cocotb tests of the board top ``uart_top`` (``logicforge.boards.top.ClassifierTop``) over its UART.

The host side is ``cocotbext-uart``: a ``UartSource`` drives 8N1 frames onto ``rx`` and a
``UartSink`` decodes every frame on ``tx``. Their bit time is ``divisor`` clock periods; the clock
period is ``CLOCK_NS``, so the sim's baud rate is ``1e9 / (divisor * CLOCK_NS)``. Only the framing
error test drives ``rx`` by hand (a break: ``rx`` low through where the stop bit belongs), which a
``UartSource`` cannot send.

Stimulus comes from the JSON file named by ``$LOGICFORGE_UART_TB`` (written by the test that runs
this module, e.g. tests/test_board_top.py): ``divisor``, ``gap_timeout_cycles``, ``led_bits``,
``samples`` (a list of byte lists, one sample each, exactly as a host sends them), ``expected``
(the reference evaluator's class per sample) and ``junk`` (a few bytes of a partial sample).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from typing import NamedTuple

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles
from cocotb.simtime import get_sim_time
from cocotbext.uart import UartSink, UartSource

ENV = "LOGICFORGE_UART_TB"
CLOCK_NS = 10


def _load():
    with open(os.environ[ENV]) as fh:
        return json.load(fh)


class Reply(NamedTuple):
    """One byte the host received, with the top's outputs at the moment it was decoded."""

    byte: int
    leds: int
    activity: int
    uart_error: int
    cycle: int  # clock cycles since time 0 (the sink decodes a byte in the middle of its stop bit)


@dataclass
class Host:
    """The host end of the UART and what it has received (one entry per reply byte)."""

    source: UartSource
    sink: UartSink
    received: list

    async def collect(self, dut) -> None:
        """Move every byte the sink decodes into ``received``, with the LEDs as they are then."""
        while True:
            byte = (await self.sink.read(1))[0]
            self.received.append(Reply(byte, int(dut.class_leds.value), int(dut.activity.value),
                                       int(dut.uart_error.value), now()))


def now() -> int:
    """The simulation time in clock cycles."""
    return int(get_sim_time("ns")) // CLOCK_NS


async def open_host(dut, divisor: int, *, quiet: bool = False) -> Host:
    """Clock, reset, idle line, then the UART source and sink at ``divisor`` clock cycles per bit,
    and a running collector. ``quiet`` stops cocotbext-uart logging every byte (a line per byte
    costs more than the simulation of it)."""
    Clock(dut.clk, CLOCK_NS, unit="ns").start()
    dut.rx.value = 1
    dut.rst.value = 1
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 4)
    baud = 1e9 / (divisor * CLOCK_NS)
    host = Host(UartSource(dut.rx, baud=baud), UartSink(dut.tx, baud=baud), [])
    assert int(1e9 / baud) == divisor * CLOCK_NS, "the UART bit time is not a whole number of clock cycles"
    if quiet:
        for end in (host.source, host.sink):
            end.log.setLevel(logging.WARNING)
    cocotb.start_soon(host.collect(dut))
    return host


async def start(dut) -> tuple[dict, Host]:
    """The stimulus file, then :func:`open_host` at its divisor."""
    cfg = _load()
    return cfg, await open_host(dut, cfg["divisor"])


async def send(host: Host, data) -> None:
    """Send bytes and wait until the last stop bit is on the line."""
    await host.source.write(data)
    await host.source.wait()


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
    cfg, host = await start(dut)
    div, mask, received = cfg["divisor"], (1 << cfg["led_bits"]) - 1, host.received
    activity = int(dut.activity.value)
    for i, (sample, cls) in enumerate(zip(cfg["samples"], cfg["expected"])):
        await send(host, sample)
        await wait_replies(dut, cfg, received, i + 1)
        byte, leds, act = received[i][:3]
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
    cfg, host = await start(dut)
    div, received = cfg["divisor"], host.received
    for sample in cfg["samples"]:
        await send(host, sample)
    await wait_replies(dut, cfg, received, len(cfg["samples"]))
    await ClockCycles(dut.clk, 30 * div)
    assert [r[0] for r in received] == cfg["expected"]


@cocotb.test()
async def resync_after_pause(dut):
    """A partial sample followed by a pause longer than the gap timeout is dropped."""
    cfg, host = await start(dut)
    div, received = cfg["divisor"], host.received
    await send(host, cfg["junk"])
    await ClockCycles(dut.clk, cfg["gap_timeout_cycles"] + 20 * div)
    assert not received, "a partial sample produced a reply"
    await send(host, cfg["samples"][0])
    await wait_replies(dut, cfg, received, 1)
    await ClockCycles(dut.clk, 30 * div)
    assert [r[0] for r in received] == [cfg["expected"][0]]


@cocotb.test()
async def framing_error(dut):
    """A break (``rx`` low through where the stop bit belongs) sets uart_error and drops the
    partial sample; the next sample is classified correctly and clears uart_error."""
    cfg, host = await start(dut)
    div, received = cfg["divisor"], host.received
    await send(host, cfg["junk"][:1])  # a good byte: now mid-sample
    dut.rx.value = 0  # the source is idle: hold a break for 13 bit times (start, 8 data, stop, more)
    await ClockCycles(dut.clk, 13 * div)
    dut.rx.value = 1
    await ClockCycles(dut.clk, 2 * div)
    assert int(dut.uart_error.value) == 1, "uart_error not set by a framing error"
    await send(host, cfg["samples"][1])
    await wait_replies(dut, cfg, received, 1)
    await ClockCycles(dut.clk, 30 * div)
    assert [r[0] for r in received] == [cfg["expected"][1]]
    assert int(dut.uart_error.value) == 0, "uart_error not cleared by a classified sample"
