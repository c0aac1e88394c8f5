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

.PHONY: experiment setup train predict passes verilog sim synth bitstream program demo bench test clean help

help:
	@echo "make setup | train [CONFIG=… NPROC=n] | experiment [EXPERIMENT=…] | verilog|sim|synth|bitstream|program [BOARD=… RUN=…|NETLIST=…] | demo | bench | test"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet torch==2.13.0
	$(VENV)/bin/pip install --quiet -e ".[dev]"
	$(VENV)/bin/python -c "from logicforge.train import cpu_kernel; cpu_kernel.module()"
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

test: $(STAMP)
	$(VENV)/bin/python -m pytest $(ARGS)

clean:
	rm -rf build runs/default bench/results.json
