"""Hardware generation: the pipelined classifier core ``logicnet_core`` (see docs/hardware.md).

``core.LogicNetCore`` (the Amaranth component), ``verilog.core_verilog`` (its Verilog), ``pipeline``
(stages and the one latency formula), ``head`` (popcount and argmax), ``commands`` (``logicforge
verilog``), ``measure`` (iCE40 cost of several configurations).
"""
