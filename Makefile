# Every target is a thin call of the `logicforge` command (see `logicforge --help`).
# The first target that needs it creates .venv with pip (no sudo).

PYTHON ?= python3
VENV   := .venv
LF     := $(VENV)/bin/logicforge
STAMP  := $(VENV)/.logicforge-installed

CONFIG  ?= configs/default.yaml
BOARD   ?= icebreaker
NPROC   ?= 1
EXPERIMENT ?= experiments/digits.yaml
RUN     ?=
NETLIST ?=
ARGS    ?=
SOURCE  := $(if $(NETLIST),--netlist $(NETLIST),$(if $(RUN),--run $(RUN),))

.PHONY: setup train passes verilog sim sim-top verify synth bitstream program demo bench experiment test test-fast fuzz clean help

help:
	@echo "make setup | train [CONFIG=… NPROC=n] | experiment [EXPERIMENT=…] | verilog|sim|sim-top|verify|synth|bitstream|program [BOARD=… RUN=…|NETLIST=…] | demo | bench | test | test-fast | fuzz"

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet torch==2.13.0
	$(VENV)/bin/pip install --quiet -c constraints.txt -e ".[dev]"
	$(LF) kernel || echo "make setup: the C++ kernel did not build; training will use plain PyTorch"
	touch $@

setup: $(STAMP)

train: $(STAMP)
	$(LF) train --config $(CONFIG) --nproc $(NPROC) $(ARGS)

passes: $(STAMP)
	$(LF) passes $(SOURCE) $(ARGS)

verilog: $(STAMP)
	$(LF) verilog --board $(BOARD) $(SOURCE) $(ARGS)

sim: $(STAMP)
	$(LF) sim $(SOURCE) $(ARGS)

sim-top: $(STAMP)
	$(LF) sim --top $(SOURCE) $(ARGS)

verify: $(STAMP)
	$(LF) verify $(SOURCE) $(ARGS)

synth: $(STAMP)
	$(LF) synth --board $(BOARD) $(SOURCE) $(ARGS)

bitstream: $(STAMP)
	$(LF) bitstream --board $(BOARD) $(SOURCE) $(ARGS)

program: $(STAMP)
	$(LF) program --board $(BOARD) $(SOURCE) $(ARGS)

demo: $(STAMP)
	$(LF) demo --config $(CONFIG) $(ARGS)

experiment: $(STAMP)
	$(LF) experiment --config $(EXPERIMENT) $(ARGS)

bench: $(STAMP)
	$(LF) bench $(ARGS)

# The full suite (what CI runs).
test: $(STAMP)
	$(VENV)/bin/python -m pytest $(ARGS)

# The inner loop: no Verilator builds, no synthesis, no long training (pytest markers, pyproject.toml).
test-fast: $(STAMP)
	$(VENV)/bin/python -m pytest -m "not slow and not verilator and not synth and not fuzz" $(ARGS)

fuzz: $(STAMP)
	LOGICFORGE_FUZZ_PROFILE=long $(VENV)/bin/python -m pytest tests/test_fuzz.py tests/test_fuzz_uart.py $(ARGS)

clean:
	rm -rf build runs/default bench/results.json
