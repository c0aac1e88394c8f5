"""``logicforge demo``: the main job on the bundled default, end to end.

1. train with the config (default configs/default.yaml) into runs/<name>/;
2. ``verilog`` for the iCEBreaker;
3. ``sim``: bit-exact parity in Verilator on the test set and random vectors;
4. ``synth`` for the iCEBreaker with yosys and nextpnr, at ``--clock-mhz`` (default 100: the PLL;
   the whole top of the default model closes it, see docs/hardware.md; 12 builds for the oscillator);
5. ``bitstream``: ``top.bin`` from the placed design (reused, not re-placed).

Each step is the same subcommand a user would run; the demo then reads the JSON each one wrote and
prints one table. A finished run with the same config is reused rather than retrained.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

BOARD = "icebreaker"
#: The demo's board clock: the PLL at 100 MHz (12 uses the oscillator directly).
CLOCK_MHZ = 100.0


def configure(p) -> None:
    p.add_argument("--config", default="configs/default.yaml", metavar="FILE",
                   help="training config (default configs/default.yaml)")
    p.add_argument("--runs-dir", default="runs", metavar="DIR", help="parent of run directories (default runs/)")
    p.add_argument("--build-dir", default="build", metavar="DIR", help="root of the build tree (default build/)")
    p.add_argument("--random", type=int, default=10000, metavar="N", help="random vectors for the parity check")
    p.add_argument("--clock-mhz", type=float, default=CLOCK_MHZ, metavar="MHZ",
                   help=f"system clock of the board build (default {CLOCK_MHZ:g}: the PLL; 12: the oscillator)")
    p.add_argument("--head", choices=("serial", "tree"), default="serial",
                   help="the classifier head of the core and the board top (default serial)")


def run(args) -> int:
    from logicforge.cli import main
    from logicforge.errors import LogicforgeError
    from logicforge.train import config
    from logicforge.train.trainer import finished_run

    cfg = config.load(args.config)
    run_dir = Path(args.runs_dir) / cfg["name"]
    name = run_dir.name
    src = ["--run", str(run_dir), "--build-dir", args.build_dir]
    seconds: dict[str, float] = {}

    def stage(label: str, argv: list[str]) -> None:
        print(f"\n=== {label}: logicforge {' '.join(argv)}", flush=True)
        t0 = time.perf_counter()
        rc = main(argv)
        seconds[label] = time.perf_counter() - t0
        if rc:
            raise LogicforgeError(f"demo stopped: step '{label}' failed (exit {rc})")

    if finished_run(run_dir, cfg):
        print(f"=== train: reusing the finished run {run_dir} (same config); delete it to retrain")
        seconds["train"] = 0.0
    else:
        resume = ["--resume"] if (run_dir / "checkpoint.pt").exists() else []
        stage("train", ["train", "--config", args.config, "--runs-dir", args.runs_dir, *resume])
    core_opts = ["--head", args.head]
    # the config's pipelining (hardware.layers_per_stage), also for a run trained before it was set
    lps = (cfg.get("hardware") or {}).get("layers_per_stage")
    if lps is not None:
        core_opts += ["--layers-per-stage", str(lps)]
    # and its board top's encoder (hardware.encoder)
    enc = (cfg.get("hardware") or {}).get("encoder")
    top_opts = core_opts + (["--encoder", enc] if enc else [])
    stage("verilog", ["verilog", "--board", BOARD, *top_opts, *src])
    stage("sim", ["sim", "--random", str(args.random), *core_opts, *src])
    clock = ["--clock-mhz", f"{args.clock_mhz:g}"]
    stage("estimate", ["estimate", "--board", BOARD, *clock, *top_opts, "--run", str(run_dir)])
    stage("synth", ["synth", "--board", BOARD, *clock, *top_opts, *src])
    stage("bitstream", ["bitstream", "--board", BOARD, *clock, *top_opts, *src])

    build = Path(args.build_dir) / name
    summary = json.loads((run_dir / "summary.json").read_text())
    core = json.loads((build / BOARD / "core.json").read_text())
    sim = json.loads((build / "sim" / "report.json").read_text())
    synth = json.loads((build / BOARD / "synth.json").read_text())
    from logicforge.boards.estimate import estimate
    from logicforge.netlist import format as nf

    est = estimate(nf.load(run_dir / "netlist.json"), board=BOARD, clock_mhz=args.clock_mhz, head=args.head,
                   layers_per_stage=lps, encoder=enc)
    rows = [
        ("discrete test accuracy", f"{100 * summary['test_acc_discrete']:.2f} % ({summary['dataset']}, "
                                   f"{'LUT4 nodes' if summary.get('node') == 'lut4' else summary['mode']})"),
        ("gates (trained -> after passes)", f"{core['gates_before']} -> {core['gates_after']}"),
        ("parity (Verilator)", f"{sim['samples'] - sim['mismatches']}/{sim['samples']} bit-exact"),
        ("LUT4 / logic cells", f"{synth['luts']} / {synth['lcs']} of {synth['lcs_available']}"),
        ("LC split (encoder/gates/head/top)", " / ".join(str(synth.get("lc_split", {}).get(p, "?"))
                                                      for p in ("encoder", "gates", "head", "top"))),
        ("LC estimate (no synthesis)", f"{est['lcs']} ({100 * (est['lcs'] - synth['lcs']) / synth['lcs']:+.1f} %)"
                                        if synth.get("lcs") else str(est["lcs"])),
        ("flip-flops", f"{synth['ffs']}"),
        ("Fmax (nextpnr)", f"{synth['fmax_mhz']:.1f} MHz at a {synth['clock_mhz']:g} MHz clock"),
        ("latency", f"{core['latency_cycles']} cycles = "
                    f"{1000 * core['latency_cycles'] / synth['clock_mhz']:.0f} ns at {synth['clock_mhz']:g} MHz, "
                    f"{sim['samples_per_cycle']:g} samples/cycle (core, {args.head} head; the board top adds "
                    f"its encoder)"),
        ("bitstream", str(build / BOARD / "top.bin")),
        ("stage seconds", ", ".join(f"{k} {v:.0f}" for k, v in seconds.items())),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"\nlogicforge demo: {run_dir} on {BOARD}")
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")
    return 0
