"""The boards room: the board registry (``registry``), the iCEBreaker top with its UART and PLL
(``icebreaker``, ``top``, ``uart``, ``pll``), the yosys/nextpnr/icepack flow (``flow``) and the
iCE40 cost measurement of the core (``measure``).

May import: ``hdl`` and ``netlist``, ``logicforge.errors`` / ``logicforge.fileio``, Amaranth and
amaranth-boards. Not train, sim (a sibling) or the command layer.
"""
