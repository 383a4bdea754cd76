# isletsim: one command to set up and run the main job, one to set up and run the tests.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench bench-metrics bench-trial validate clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/isletsim run protocols/forward_phase12.toml --out runs/forward_phase12 --compare-seeds 4
	@echo "report: runs/forward_phase12/report.html"

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

SGVENV := .venv-simglucose

# The reference simulator lives in its own venv (it pins gym==0.9.4).
$(SGVENV)/.installed:
	$(PYTHON) -m venv $(SGVENV)
	$(SGVENV)/bin/python -m pip install --quiet "simglucose==0.2.11" "setuptools<81"
	touch $(SGVENV)/.installed

bench: $(STAMP) $(SGVENV)/.installed
	$(BIN)/python benchmarks/bench_engine.py --simglucose-python $(SGVENV)/bin/python --write-docs

bench-metrics: $(STAMP)
	$(BIN)/python benchmarks/bench_metrics.py

bench-trial: $(STAMP)
	$(BIN)/python benchmarks/bench_trial.py

clean:
	rm -rf $(VENV) $(SGVENV) runs build dist *.egg-info src/*.egg-info .pytest_cache
