"""One module per ``logicforge`` subcommand, each with ``configure(parser)`` and ``run(args) -> int``."""
