#!/bin/bash
# Hardware cost of a training run as the streaming top will feed it (docs/training.md, "Fitting the iCE40UP5K").
# usage: tools/fit/measure_run.sh RUN_DIR  -> build/hw/<run>/{pre.json,measure.log}
#  1. tools/fit/preencode.py: the netlist with one 1-bit feature per live encoded bit (comparators become
#     wires; checked score-for-score against the reference on the run's test images);
#  2. logicforge measure --lps 3 --pack-only (a hidden developer command): yosys synth_ice40 of the core and nextpnr's
#     logic-cell count of the core wrapped in measure_top (serial input shift register, XOR-reduced scores).
set -e
cd "$(dirname "$0")/../.."
r=$1; n=$(basename "$r"); out=build/hw/$n; mkdir -p "$out"
.venv/bin/python tools/fit/preencode.py "$r/netlist.json" "$out/pre.json" "$r/test_set.npz" > "$out/pre.log"
nice -n 10 timeout 1500 .venv/bin/logicforge measure --netlist "$out/pre.json" --lps 3 --pack-only \
    --out "$out/m" > "$out/measure.log" 2>&1
tail -1 "$out/measure.log"
