"""``logicforge train``: the training command of ``logicforge.train.commands`` with the hardware
cost model plugged in (``hardware: {board, max_lcs}`` in the config); train/ itself imports no
hardware code, so the estimator is made here and passed in as a callable."""

from __future__ import annotations


def configure(p) -> None:
    from logicforge.train import commands

    commands.configure(p)


def make_estimator(cfg: dict):
    """netlist -> {lcs, luts, ffs, ...} for ``cfg['hardware']['board']``, or None without one."""
    hw = cfg.get("hardware") or {}
    if not hw.get("board"):
        if hw.get("max_lcs"):
            from logicforge.errors import LogicforgeError

            raise LogicforgeError("hardware.max_lcs needs hardware.board (e.g. icebreaker)")
        return None
    from logicforge.boards.estimate import estimate
    from logicforge.boards.registry import get_board

    board = get_board(hw["board"]).name  # one-line error for an unknown board, before training

    def estimator(netlist) -> dict:
        return estimate(netlist, board=board)

    return estimator


def run(args) -> int:
    from logicforge.train import commands

    return commands.run(args, make_estimator=make_estimator)
