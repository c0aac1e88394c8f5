"""``logicforge bench`` on tiny sizes: the results file's structure and every measurement path.

No timing assertions: only that each path runs, reports what it says it reports, and that the
discrete-evaluation path agrees with the reference.
"""

import argparse
import json
import os

import pytest
import torch

if not torch.cuda.is_available():  # before anything imports triton: run its kernels on the CPU
    os.environ.setdefault("TRITON_INTERPRET", "1")

from logicforge.commands import bench as bench_command
from logicforge.errors import LogicforgeError
from logicforge.train import bench, cpu_kernel

TINY = {"layers": 2, "width": 40, "batch": 16, "in_bits": 24, "classes": 10}
TRAIN_KEYS = {"impl", "mode", "device", "layers", "width", "batch", "in_bits", "ms_per_step", "ms_forward",
              "ms_backward", "ms_optimizer", "ms_noise", "peak_mem_mb", "peak_total_mb"}


def _args(tmp_path, **kw):
    p = argparse.ArgumentParser()
    bench_command.configure(p)
    a = p.parse_args(["--size", "2,40,16,24", "--steps", "1", "--warmup", "0", "--threads", "1",
                      "--device", "cpu", "--out", str(tmp_path / "bench" / "results.json")])
    for k, v in kw.items():
        setattr(a, k, v)
    return a


#: Step times the test substitutes for the measured ones, so the speed-up has a known value.
FAKE_MS_PER_STEP = {"naive": 40.0, "cpp": 8.0, "torch": 10.0, "torchlogix": 80.0}


def _in_process_with_fixed_step_times(spec):
    """The real measurement, in this process (the subprocess protocol is tested below), with
    ``ms_per_step`` replaced by ``FAKE_MS_PER_STEP``."""
    if spec["kind"] != "train":
        return bench.measure_any(spec)
    return dict(bench.measure_any(spec), ms_per_step=FAKE_MS_PER_STEP[spec["impl"]])


def _torchlogix():
    return () if isinstance(bench.import_torchlogix(), str) else ("torchlogix",)


def test_results_json_structure(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bench, "_in_subprocess", _in_process_with_fixed_step_times)
    assert bench_command.run(_args(tmp_path)) == 0
    res = json.loads((tmp_path / "bench" / "results.json").read_text())
    impls = [(e["impl"], e["mode"]) for e in res["measurements"]]
    ours = ("cpp", "torch") if cpu_kernel.available() else ("torch",)
    tlx = _torchlogix()
    assert impls == [(i, m) for m in ("gumbel", "softmax") for i in ("naive", *ours, *tlx)]
    (peak,) = res["peak"]
    assert peak["threads"] == 1 and peak["gflops"] > 0 and peak["gbytes_per_s"] > 0
    for e in res["measurements"]:
        assert TRAIN_KEYS <= set(e), e
        assert e["device"] == "cpu" and e["layers"] == 2 and e["width"] == 40 and e["gates"] == 80
        assert e["ms_forward"] > 0 and e["ms_backward"] > 0 and e["peak_total_mb"] > 0
        assert len(e["rounds_ms"]) == 2  # best of --rounds 2
        work = bench.step_work(2, 40, 16, 24, 10, e["mode"])
        floor = max(work["gflop"] / peak["gflops"], work["mbytes"] / 1e3 / peak["gbytes_per_s"]) * 1e3
        assert e["floor_ms"] == pytest.approx(floor, rel=1e-3)
        assert e["x_floor"] == pytest.approx(e["ms_per_step"] / floor, rel=1e-2)
    for mode in ("gumbel", "softmax"):  # naive 40 ms against the best of ours: cpp 8 ms, else torch 10 ms
        assert res[f"cpu_speedup_{mode}"] == (5.0 if cpu_kernel.available() else 4.0)
        if tlx:  # torchlogix 80 ms against the same
            assert res[f"cpu_speedup_vs_torchlogix_{mode}"] == (10.0 if cpu_kernel.available() else 8.0)
        else:
            assert res[f"cpu_speedup_vs_torchlogix_{mode}"] is None
    if not tlx:
        assert any(n.startswith("cpu torchlogix: skipped (") for n in res["notes"])
    (ev,) = res["eval"]
    assert ev["impl"] == "reference_numpy" and ev["samples_per_s"] > 0 and ev["gates"] == 80
    assert res["threads"] == 1 and res["command"].startswith("logicforge bench")
    out = capsys.readouterr().out
    assert "ms/step" in out and "samples/s" in out and "cpu speedup" in out


def test_step_work_counts_the_backward_multiply_adds():
    """6 x 8000, batch 256: 12 flops per gate and sample (8 without input gradients in the first layer)."""
    g = bench.step_work(6, 8000, 256, 1568, 10, "gumbel")
    gs = 48_000 * 256
    assert g["gflop"] * 1e9 == pytest.approx(12 * gs - 4 * 8000 * 256 + 48_000 * (40 + 16 * 12 + 16 * 40))
    s = bench.step_work(6, 8000, 256, 1568, 10, "softmax")
    assert s["gflop"] * 1e9 == pytest.approx(18 * gs - 4 * 8000 * 256 + 48_000 * (40 + 16 * 12))
    assert s["mbytes"] * 1e6 == pytest.approx(g["mbytes"] * 1e6 + 8 * gs)  # the float activations


@pytest.mark.slow  # two fresh interpreters that import torch and measure: ~20 s on a busy machine
def test_worker_subprocess_protocol():
    res = bench._in_subprocess({"kind": "train", "impl": "torch", "mode": "gumbel", "device": "cpu",
                                "steps": 1, "warmup": 0, "threads": 1, **TINY})
    assert "error" not in res, res
    assert TRAIN_KEYS <= set(res) and res["memory_measure"].startswith(("VmHWM", "ru_maxrss"))
    bad = bench._in_subprocess({"kind": "train", "impl": "nonsense", "mode": "gumbel", "device": "cpu",
                                "steps": 1, "warmup": 0, **TINY})
    assert "error" in bad and bad["impl"] == "nonsense"


def test_triton_paths_run_under_the_interpreter():
    """The CUDA benchmark's Triton measurements, on CPU tensors through TRITON_INTERPRET (no GPU here)."""
    pytest.importorskip("triton")
    res = bench.measure({"impl": "triton", "mode": "gumbel", "device": "cpu", "steps": 1, "warmup": 0, **TINY})
    assert res["impl"] == "triton" and res["ms_per_step"] > 0
    ev = bench.measure_eval({"impl": "triton", "device": "cpu", "samples": 100, "reps": 1, **TINY})
    assert ev["matches_reference"] is True and ev["samples_per_s"] > 0


def test_bad_arguments_are_one_line_errors(tmp_path):
    with pytest.raises(LogicforgeError, match="--size"):
        bench_command.run(_args(tmp_path, size="2,40"))
    with pytest.raises(LogicforgeError, match="--steps must be at least 1, got 0"):
        bench_command.run(_args(tmp_path, steps=0))


def test_a_failed_measurement_exits_like_every_command(tmp_path, monkeypatch):
    """Results are still written, then the command fails with one line (exit status 2 in the CLI)."""
    def fail_naive(spec):
        if spec.get("impl") == "naive":
            return {**{k: v for k, v in spec.items() if k != "steps"}, "error": "boom"}
        return _in_process_with_fixed_step_times(spec)

    monkeypatch.setattr(bench, "_in_subprocess", fail_naive)
    # naive, (cpp,) torch, (torchlogix,) per mode, the machine's peak and the evaluation
    total = 2 * (2 + cpu_kernel.available() + len(_torchlogix())) + 2
    with pytest.raises(LogicforgeError, match=rf"2 of {total} measurements failed \(first: boom\)"):
        bench_command.run(_args(tmp_path))
    assert (tmp_path / "bench" / "results.json").is_file()
