"""The netlist room: the 16 gates (``gates``), the netlist file format (``format``), the reference
evaluator that defines a netlist's function, its input encoding, feature checks and scoring
(``reference``), the optimisation passes (``passes``), structure facts (``analysis``) and random
netlists for tests (``generate``).

May import: numpy and ``logicforge.errors`` / ``logicforge.fileio`` only; no other room
(train, hdl, sim, boards) and not the command layer. Everything else builds on this room.
"""
