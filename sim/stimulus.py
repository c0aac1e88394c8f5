"""Stimulus and checking for the streaming parity test of ``logicnet_core`` (pure numpy, no cocotb).

The parity check (``logicforge.sim.parity``) builds a cycle schedule and the reference results, and saves
them to ``stimulus.npz``. The cocotb test (``logicforge.sim.core_tb``) drives the schedule, one entry
per clock, records what the core put out and saves ``observed.npz``. Both then call ``check`` here,
so the cocotb test and the parity check judge the run by the same rules.

Timing convention. The testbench drives entry ``t`` of the schedule just after falling edge ``t``
and samples the outputs at falling edge ``t`` (before driving). The rising edge between falling
edges ``t`` and ``t + 1`` captures entry ``t``. A core with latency ``L`` therefore shows the
sample driven at entry ``i`` at observation ``i + L``: ``out_valid`` goes high exactly ``L`` clock
cycles after ``in_valid``.

Reset contract checked. ``rst`` is synchronous and active high. A sample is dropped if ``rst`` is
high when it is presented or at any later edge before it leaves the pipeline (reset flushes all
samples in flight). From the first edge that sees ``rst`` on, ``out_valid`` must be high exactly
when a sample that survived comes out, and low otherwise (gaps, reset, idle). Observations before
the first reset are not checked: the flip-flops start in an unspecified state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Random samples at the start of the random block that are interleaved with idle cycles.
GAPPY_SAMPLES = 256


# -- packing integers <-> (n, count) arrays of fields -----------------------------------------

def pack_rows(x: np.ndarray, width: int, chunk: int = 4096) -> list[int]:
    """Pack each row of an (n, F) array of ``width``-bit fields into one int, field 0 lowest."""
    x = np.asarray(x, dtype=np.int64)
    n, f = x.shape
    shifts = np.arange(width, dtype=np.int64)
    out: list[int] = []
    for lo in range(0, n, chunk):
        part = x[lo:lo + chunk]
        bits = ((part[:, :, None] >> shifts) & 1).astype(np.uint8).reshape(len(part), f * width)
        packed = np.packbits(bits, axis=1, bitorder="little")
        out.extend(int.from_bytes(row.tobytes(), "little") for row in packed)
    return out


def unpack_ints(values, count: int, width: int) -> np.ndarray:
    """Inverse of ``pack_rows``: a sequence of ints to an (n, count) int64 array of fields."""
    mask = (1 << width) - 1
    out = np.zeros((len(values), count), dtype=np.int64)
    for i, v in enumerate(values):
        v = int(v)
        for k in range(count):
            out[i, k] = (v >> (k * width)) & mask
    return out


# -- the cycle schedule --------------------------------------------------------------------------

@dataclass
class Schedule:
    """One entry per clock cycle: what the testbench drives after that cycle's falling edge.

    ``sample[t]`` indexes the sample table (-1: no sample; ``in_data`` keeps its old value).
    ``streams`` lists (first cycle, number of samples) of the back-to-back blocks used for throughput;
    a block's samples are numbered consecutively.
    ``extra`` is how many extra samples (beyond test and random) the schedule uses, numbered after
    them: they fill the pre-reset, reset and flush phases.
    """

    valid: np.ndarray
    rst: np.ndarray
    sample: np.ndarray
    streams: list[tuple[int, int]] = field(default_factory=list)
    extra: int = 0

    def __len__(self) -> int:
        return len(self.valid)


def make_schedule(n_test: int, n_random: int, latency: int, rng: np.random.Generator,
                  gappy: int = GAPPY_SAMPLES, interval: int = 1) -> Schedule:
    """The stimulus timeline. Samples ``0..n_test-1`` are the test set, then ``n_random`` random ones.

    ``interval``: the core's least number of cycles between samples (1 for a one-sample-per-clock
    core; ``pipeline.serial_interval`` for a serial head): every sample is followed by
    ``interval - 1`` idle cycles, so "back to back" means ``interval`` cycles apart.

    Phases: pre-reset traffic (unchecked); reset held 3 cycles with samples offered (dropped);
    the test set back to back; a gap; the first ``gappy`` random samples interleaved with idle
    cycles; the remaining random samples back to back; samples in flight when a 1-cycle reset
    hits (flushed), samples after it; idle cycles to drain the pipeline.
    """
    valid: list[int] = []
    rst: list[int] = []
    sample: list[int] = []
    streams: list[tuple[int, int]] = []
    next_extra = n_test + n_random

    def push(v: int, r: int, s: int) -> None:
        valid.append(v)
        rst.append(r)
        sample.append(s)
        if v:
            for _ in range(interval - 1):
                valid.append(0)
                rst.append(0)
                sample.append(-1)

    def extra() -> int:
        nonlocal next_extra
        next_extra += 1
        return next_extra - 1

    def block(first: int, count: int) -> None:
        if count:
            streams.append((len(valid), count))
        for s in range(first, first + count):
            push(1, 0, s)

    for _ in range(latency + 2):          # traffic before any reset: not checked
        push(1, 0, extra())
    push(1, 1, extra())                   # reset with samples offered: dropped
    push(0, 1, -1)
    push(1, 1, extra())
    push(0, 0, -1)
    push(0, 0, -1)
    block(0, n_test)                       # the test set, back to back
    for _ in range(3):
        push(0, 0, -1)
    g = min(gappy, n_random)
    for s in range(n_test, n_test + g):    # random samples with idle gaps
        for _ in range(int(rng.choice(3, p=[0.6, 0.25, 0.15]))):
            push(0, 0, -1)
        push(1, 0, s)
    block(n_test + g, n_random - g)        # the rest, back to back
    for _ in range(-(-(latency + 1) // interval)):  # a reset hits samples in flight
        push(1, 0, extra())
    push(1, 1, extra())
    push(0, 0, -1)
    for _ in range(2):                     # and the pipeline works again after it
        push(1, 0, extra())
    for _ in range(latency + 4):          # drain
        push(0, 0, -1)
    return Schedule(np.array(valid, dtype=np.uint8), np.array(rst, dtype=np.uint8),
                    np.array(sample, dtype=np.int64), streams, next_extra - n_test - n_random)


def expected_outputs(valid: np.ndarray, rst: np.ndarray, sample: np.ndarray, latency: int):
    """(exp_valid, exp_sample, first_checked) per observation under the reset contract above."""
    t_len = len(valid)
    exp_valid = np.zeros(t_len, dtype=np.uint8)
    exp_sample = np.full(t_len, -1, dtype=np.int64)
    resets = np.nonzero(rst)[0]
    first_checked = int(resets[0]) + 1 if len(resets) else t_len
    csum = np.concatenate([[0], np.cumsum(rst.astype(np.int64))])
    i = np.nonzero(valid.astype(bool) & (sample >= 0))[0]
    j = i + latency
    keep = j < t_len
    i, j = i[keep], j[keep]
    survived = (csum[j] - csum[i]) == 0  # no reset at entries i .. j-1
    exp_valid[j[survived]] = 1
    exp_sample[j[survived]] = sample[i[survived]]
    return exp_valid, exp_sample, first_checked


# -- checking ------------------------------------------------------------------------------------

def check(stim: dict, obs: dict) -> dict:
    """Judge a run. ``stim``: the arrays of stimulus.npz; ``obs``: those of observed.npz.

    Returns a dict with ``ok``, ``message`` (one line), ``samples`` (outputs compared),
    ``mismatches``, ``required_missing``, ``valid_errors``, ``latency_measured``,
    ``samples_per_cycle`` and ``first_mismatch`` / ``first_valid_error`` (dicts or None).
    """
    latency = int(stim["latency"])
    n_req = int(stim["n_test"]) + int(stim["n_random"])
    exp_valid, exp_sample, t0 = expected_outputs(stim["valid"], stim["rst"], stim["sample"], latency)
    out_valid = np.asarray(obs["out_valid"]).astype(np.uint8)
    t_len = min(len(out_valid), len(exp_valid))

    bad = np.nonzero(out_valid[t0:t_len] != exp_valid[t0:t_len])[0] + t0
    first_valid_error = None
    if len(bad):
        t = int(bad[0])
        first_valid_error = {"cycle": t, "out_valid": int(out_valid[t]), "expected": int(exp_valid[t]),
                             "why": _why_valid(stim, t, latency, int(exp_valid[t]))}

    obs_pos = np.nonzero(out_valid[t0:t_len])[0] + t0
    exp_pos = np.nonzero(exp_valid[t0:t_len])[0] + t0
    n = min(len(obs_pos), len(exp_pos))
    obs_pos, exp_pos = obs_pos[:n], exp_pos[:n]
    samples = exp_sample[exp_pos]
    got_class = np.asarray(obs["out_class"])[obs_pos]
    got_scores = np.asarray(obs["out_scores"])[obs_pos]
    exp_class = np.asarray(stim["exp_classes"])[samples]
    exp_scores = np.asarray(stim["exp_scores"])[samples]
    wrong = (got_class != exp_class) | np.any(got_scores != exp_scores, axis=1)
    first_mismatch = None
    if wrong.any():
        m = int(np.nonzero(wrong)[0][0])
        s = int(samples[m])
        first_mismatch = {
            "sample": s,
            "kind": sample_kind(stim, s),
            "cycle": int(obs_pos[m]),
            "features": np.asarray(stim["features"])[s].tolist(),
            "expected_class": int(exp_class[m]),
            "got_class": int(got_class[m]),
            "expected_scores": exp_scores[m].tolist(),
            "got_scores": got_scores[m].tolist(),
        }
    required_missing = n_req - int(np.count_nonzero(samples < n_req))

    latency_measured = latency if not len(bad) else _best_latency(stim, out_valid[:t_len], t0, latency)

    # Throughput: over every back-to-back block, outputs seen / cycles from its first to last output.
    outputs = span = 0
    where = {int(s): int(p) for s, p in zip(samples, obs_pos)}
    for start, length in np.asarray(stim["streams"]).reshape(-1, 2):
        first = int(stim["sample"][start])  # a block's samples are numbered consecutively
        pos = [where[s] for s in range(first, first + int(length)) if s in where]
        if pos:
            outputs += len(pos)
            span += pos[-1] - pos[0] + 1
    samples_per_cycle = outputs / span if span else None

    if first_valid_error is not None:
        e = first_valid_error
        message = (f"out_valid wrong at {len(bad)} cycles; first at cycle {e['cycle']}: "
                   f"got {e['out_valid']}, expected {e['expected']} ({e['why']}); "
                   f"measured latency {latency_measured}, generator says {latency}")
    elif first_mismatch is not None:
        f = first_mismatch
        message = (f"{int(wrong.sum())} of {n} outputs differ from the reference; first: "
                   f"{f['kind']} at cycle {f['cycle']}, features {f['features']}: expected class "
                   f"{f['expected_class']} scores {f['expected_scores']}, got class {f['got_class']} "
                   f"scores {f['got_scores']}")
    elif required_missing:
        message = f"{required_missing} samples never came out of the core"
    else:
        message = f"parity: {n}/{n} bit-exact"
    ok = first_valid_error is None and first_mismatch is None and required_missing == 0 and n > 0
    return {
        "ok": bool(ok),
        "message": message,
        "samples": int(n),
        "mismatches": int(wrong.sum()),
        "required_missing": int(required_missing),
        "valid_errors": int(len(bad)),
        "latency_measured": latency_measured,
        "samples_per_cycle": samples_per_cycle,
        "first_mismatch": first_mismatch,
        "first_valid_error": first_valid_error,
    }


def _best_latency(stim: dict, out_valid: np.ndarray, t0: int, claimed: int) -> int | None:
    """The latency whose expected out_valid pattern agrees best with the observed one (None: never
    high). Only used to explain a failure."""
    if not out_valid[t0:].any():
        return None
    best, best_agree = None, -1
    for d in range(0, claimed + 65):
        ev = expected_outputs(stim["valid"], stim["rst"], stim["sample"], d)[0][:len(out_valid)]
        agree = int(np.count_nonzero(ev[t0:] == out_valid[t0:]))
        if agree > best_agree:
            best, best_agree = d, agree
    return best


def sample_kind(stim: dict, s: int) -> str:
    """What sample ``s`` of a stimulus is, in words: a test-set, random or reset-phase sample."""
    n_test, n_random = int(stim["n_test"]), int(stim["n_random"])
    if s < n_test:
        return f"test-set sample {s}"
    if s < n_test + n_random:
        return f"random sample {s - n_test}"
    return f"reset-phase sample {s - n_test - n_random}"


def _why_valid(stim: dict, t: int, latency: int, expected: int) -> str:
    i = t - latency
    if expected:
        return f"sample entered at cycle {i}"
    if i < 0:
        return "before any input"
    if not stim["valid"][i]:
        return f"no sample entered at cycle {i}"
    return f"sample at cycle {i} was dropped or flushed by reset"
