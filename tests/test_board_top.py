"""The board top (UART in -> core -> UART out + LEDs) in Verilator through cocotb.

The top is ``ClassifierTop`` as Verilog module ``uart_top`` (clk/rst/UART pins as ports, no FPGA
primitives), with a fast baud divisor. The cocotb module ``logicforge.sim.uart_top_tb`` plays the
host; every reply byte and LED state is compared with the reference evaluator.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from logicforge.boards.top import encode_sample, top_verilog
from logicforge.netlist import reference
from logicforge.netlist.generate import random_features, random_netlist
from logicforge.sim.uart_parity import TOP_PORTS as PORTS

TB_MODULE = "logicforge.sim.uart_top_tb"
BAUD = 1_000_000
CLK_HZ = 8_000_000  # divisor 8


def _netlist_with_varied_classes(seed: int, **kw):
    """A random netlist whose reference classes on the test samples are not all equal."""
    rng = np.random.default_rng(seed)
    for _ in range(50):
        net = random_netlist(rng, **kw)
        x = random_features(rng, net, 10)
        # extremes too: all-zero and all-max features
        x = np.concatenate([x, np.zeros((1, net.features), np.int64),
                            np.full((1, net.features), (1 << net.feature_width) - 1, np.int64)])
        _, classes = reference.evaluate(net, x)
        if len(set(classes.tolist())) >= 3:
            return net, x, classes
    raise AssertionError("no random netlist with varied classes found")


@pytest.fixture(scope="module", params=[4, 10], ids=["W4-1byte", "W10-2bytes"])
def uart_top_run(request, tmp_path_factory):
    from logicforge.sim.runner import run_cocotb

    width = request.param
    net, x, classes = _netlist_with_varied_classes(
        seed=width, features=5, feature_width=width, thresholds_per_feature=4,
        layer_widths=(32, 24), classes=6, group_size=3)
    work = tmp_path_factory.mktemp(f"uart_top_w{width}")
    text, info = top_verilog(net, clk_hz=CLK_HZ, baud=BAUD, layers_per_stage=1, gap_timeout_cycles=400)
    assert info["divisor"] == 8
    assert info["bytes_per_feature"] == (1 if width <= 8 else 2)
    (work / "uart_top.v").write_text(text)

    rng = np.random.default_rng(100 + width)
    samples = []
    for row in x:
        data = bytearray(encode_sample(net, row))
        if width > 8:  # the bits above W on the wire must be ignored: fill them with noise
            nb = info["bytes_per_feature"]
            for f in range(net.features):
                data[f * nb + nb - 1] |= int(rng.integers(0, 256)) & ~((1 << (width - 8 * (nb - 1))) - 1) & 0xFF
        samples.append(list(data))
    cfg = {
        "divisor": info["divisor"],
        "gap_timeout_cycles": info["gap_timeout_cycles"],
        "led_bits": info["led_bits"],
        "samples": samples,
        "expected": [int(c) for c in classes],
        "junk": samples[2][: info["bytes_per_sample"] - 1],
    }
    cfg_path = work / "uart_tb.json"
    cfg_path.write_text(json.dumps(cfg))
    result = run_cocotb([work / "uart_top.v"], "uart_top", TB_MODULE, work, {"LOGICFORGE_UART_TB": str(cfg_path)},
                        public_all=False, public_ports=PORTS, check=False)
    return result


@pytest.mark.slow
@pytest.mark.verilator
def test_uart_top_matches_reference(uart_top_run):
    """Four cocotb tests (request/response with LEDs, streaming, resync after a pause, framing
    error) all pass; each compares reply bytes with the reference evaluator's classes."""
    result = uart_top_run
    assert result.tests == 4, f"expected 4 cocotb tests, ran {result.tests}"
    assert result.failures == 0, "; ".join(result.messages)
