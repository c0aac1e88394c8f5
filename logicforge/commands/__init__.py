"""Subcommands of ``logicforge``, one module per verb (``configure(parser)``, ``run(args) -> int``)."""
