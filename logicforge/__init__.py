"""logicforge: train logic gate networks and compile them to bit-exact FPGA gateware.

This package is the command layer and the shared plumbing: ``cli`` (the ``logicforge`` command),
``commands`` (one module per subcommand), ``source`` (where a command's netlist comes from),
``errors`` and ``fileio`` (which every room may import). The rooms are ``logicforge.netlist``,
``.train``, ``.hdl``, ``.sim`` and ``.boards`` (folders netlist/, train/, hdl/, sim/, boards/).

May import: every room. No room imports ``cli``, ``commands`` or ``source``.
"""
