"""The ``logicforge`` subcommands, one module per verb, each with ``configure(parser)`` and ``run(args)``."""
