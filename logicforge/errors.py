"""The one exception type that the command line turns into a one-line error."""


class LogicforgeError(Exception):
    """Bad user input or an unmet precondition: a file, a config, a netlist, a board name.

    The message is a single line that names what is wrong; the CLI prints it without a traceback
    and exits non-zero.
    """
