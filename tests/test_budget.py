"""The hardware budget: ``hardware: {board, max_lcs}`` estimates every epoch and fails in one line
when the final netlist exceeds the budget; the estimate equals ``logicforge estimate``."""

import json

import pytest
import yaml

from logicforge.cli import main
from logicforge.netlist import format as nf

pytest.importorskip("amaranth", reason="the cost model uses the HDL structure")

CFG = {"dataset": "digits", "layers": 2, "width": 200, "group_size": 10, "epochs": 2, "batch_size": 64,
       "lr": 0.1, "tau": 3.0, "residual_logit": 2.0, "encoding": {"thresholds": 3}, "backend": "torch"}


def _train(tmp_path, capsys, name, hardware):
    cfg = dict(CFG, name=name) if hardware is None else dict(CFG, name=name, hardware=hardware)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    rc = main(["train", "--config", str(path), "--runs-dir", str(tmp_path / "runs")])
    return rc, capsys.readouterr(), tmp_path / "runs" / name


def test_budget_met_reports_the_estimate_every_epoch(tmp_path, capsys):
    rc, out, run = _train(tmp_path, capsys, "fits", {"board": "icebreaker", "max_lcs": 5280})
    assert rc == 0, out.err
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 2 and all(m["estimate"]["lcs"] > 0 for m in lines)
    assert out.out.count(" LCs") >= 2  # the per-epoch line shows it
    summary = json.loads((run / "summary.json").read_text())
    assert summary["estimate"] == lines[-1]["estimate"]
    # the same number as `logicforge estimate` for the exported netlist
    assert main(["estimate", "--netlist", str(run / "netlist.json"), "--json"]) == 0
    est = json.loads(capsys.readouterr().out)
    assert est["lcs"] == summary["estimate"]["lcs"]
    # group_size is a trained choice: the netlist and the head follow the config's small value
    net = nf.load(run / "netlist.json")
    assert net.group_size == 10 and len(net.layers[-1]) == net.classes * 10
    assert est["parts"]["head"]["lcs"] > 0 and est["latency_cycles"] > 0


def test_budget_not_met_is_a_one_line_error_with_the_best_estimate(tmp_path, capsys):
    rc, out, run = _train(tmp_path, capsys, "tight", {"board": "icebreaker", "max_lcs": 50})
    assert rc == 2
    err = out.err.strip()
    assert len(err.splitlines()) == 1 and "hardware budget not met" in err and "best estimate" in err
    best = min(json.loads(x)["estimate"]["lcs"] for x in (run / "metrics.jsonl").read_text().splitlines())
    assert f"best estimate {best} LCs" in err
    assert nf.load(run / "netlist.json").num_gates > 0  # the results are still written


@pytest.mark.parametrize("hardware,needle", [
    ({"max_lcs": 100}, "hardware.max_lcs needs hardware.board"),
    ({"board": "nosuch", "max_lcs": 100}, "unknown board 'nosuch'"),
    ({"board": "icebreaker", "max_lcs": 0}, "hardware.max_lcs: 0 is below the minimum"),
])
def test_bad_hardware_blocks(tmp_path, capsys, hardware, needle):
    rc, out, _ = _train(tmp_path, capsys, "bad", hardware)
    assert rc == 2 and needle in out.err and len(out.err.strip().splitlines()) == 1


def test_resume_accepts_a_changed_hardware_block(tmp_path, capsys):
    rc, out, run = _train(tmp_path, capsys, "res", None)
    assert rc == 0, out.err
    cfg = dict(CFG, name="res", epochs=3, hardware={"board": "icebreaker", "max_lcs": 5280})
    path = tmp_path / "res2.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["train", "--config", str(path), "--runs-dir", str(tmp_path / "runs"), "--resume"]) == 0
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["estimate"] is None for m in lines] == [True, True, False]


def _trained_with(tmp_path, capsys, name, **hardware):
    """A run trained with ``hardware: {board: icebreaker, max_lcs: 5280, **hardware}``, its summary, and
    ``estimate(*argv)``: ``logicforge estimate ... --json`` parsed."""
    rc, out, run = _train(tmp_path, capsys, name, {"board": "icebreaker", "max_lcs": 5280, **hardware})
    assert rc == 0, out.err

    def estimate(*extra):
        assert main(["estimate", *extra, "--json"]) == 0
        return json.loads(capsys.readouterr().out)

    return run, json.loads((run / "summary.json").read_text()), estimate


def test_the_runs_layers_per_stage_is_the_default_of_estimate_and_verilog(tmp_path, capsys):
    run, summary, estimate = _trained_with(tmp_path, capsys, "lps", layers_per_stage=1)
    own = estimate("--run", str(run))
    assert own["layers_per_stage"] == 1
    assert own["lcs"] == summary["estimate"]["lcs"]  # training estimated the design the run builds
    other = estimate("--run", str(run), "--layers-per-stage", "3")  # the option still wins
    assert other["layers_per_stage"] == 3 and other["lcs"] != own["lcs"]
    # the same netlist as a file has no run config: the head's measured default
    assert estimate("--netlist", str(run / "netlist.json"))["layers_per_stage"] != 1
    # verilog writes the run's pipelining into the core and the board top
    assert main(["verilog", "--run", str(run), "--build-dir", str(tmp_path / "build")]) == 0
    info = json.loads((tmp_path / "build" / "lps" / "icebreaker" / "core.json").read_text())
    assert info["layers_per_stage"] == 1
    # a broken value in the run's config is a one-line error
    saved = yaml.safe_load((run / "config.yaml").read_text())
    saved["hardware"]["layers_per_stage"] = 0
    (run / "config.yaml").write_text(yaml.safe_dump(saved))
    capsys.readouterr()
    assert main(["estimate", "--run", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "hardware.layers_per_stage must be an integer >= 1" in err


def test_the_runs_encoder_is_the_default_of_estimate_and_verilog(tmp_path, capsys):
    run, summary, estimate = _trained_with(tmp_path, capsys, "enc", encoder="shift")
    own = estimate("--run", str(run))
    assert own["encoder"] == "shift"
    assert own["lcs"] == summary["estimate"]["lcs"]  # training estimated the design the run builds
    other = estimate("--run", str(run), "--encoder", "stream")  # the option still wins
    assert other["encoder"] == "stream" and other["parts"]["encoder"]["lcs"] != own["parts"]["encoder"]["lcs"]
    assert estimate("--netlist", str(run / "netlist.json"))["encoder"] == "stream"
    assert main(["verilog", "--run", str(run), "--build-dir", str(tmp_path / "build")]) == 0
    info = json.loads((tmp_path / "build" / "enc" / "icebreaker" / "top_info.json").read_text())
    assert info["encoder"] == "shift"
    saved = yaml.safe_load((run / "config.yaml").read_text())
    saved["hardware"]["encoder"] = "wide"
    (run / "config.yaml").write_text(yaml.safe_dump(saved))
    capsys.readouterr()
    assert main(["estimate", "--run", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "hardware.encoder must be one of stream, shift, got 'wide'" in err
