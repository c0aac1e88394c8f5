"""The subcommands of ``logicforge``: one module per verb, each with ``configure(parser)`` and
``run(args) -> int``, registered in ``logicforge.cli.COMMANDS``; shared options in ``options``.

Room: the command layer. It may import every room (train, netlist, hdl, sim, boards) and
``logicforge``'s plumbing; no room imports it. Heavy libraries (torch, amaranth, cocotb) are
imported inside ``run`` only, so ``logicforge --help`` stays fast.
"""
