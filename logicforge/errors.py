"""The one exception type that the command line turns into a one-line error."""


class LogicforgeError(Exception):
    """Bad user input or an unmet precondition: a file, a config, a netlist, a board name.

    The message is a single line that names what is wrong; the CLI prints it without a traceback
    and exits non-zero.
    """


def check_choice(value, choices, default, what: str):
    """``value``, or ``default`` for None; LogicforgeError ``<what> must be one of ..., got ...`` for
    anything not in ``choices``."""
    if value is None:
        return default
    if value not in choices:
        raise LogicforgeError(f"{what} must be one of {', '.join(choices)}, got {value!r}")
    return value
