"""The hardware room: the pipelined classifier core ``logicnet_core`` (see docs/hardware.md).

``core.LogicNetCore`` (the Amaranth component), ``verilog.core_verilog`` (its Verilog), ``pipeline``
(stages and the one latency formula), ``head`` (popcount and argmax), ``encoder`` and
``gate_logic`` (comparators and gate expressions).

May import: ``netlist``, ``logicforge.errors`` / ``logicforge.fileio``, and Amaranth. Not train,
sim, boards or the command layer (``logicforge verilog`` lives in ``logicforge/commands``).
"""
