# landforge: two-command quick start (make demo / make test), plus bench and test-all.
# Every install goes through constraints.txt so pip never swaps in a CUDA torch.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev
DEMO_OUT ?= runs/demo

.PHONY: help install dev demo test test-all test-browser test-integration bench lint clean

help:
	@echo "make demo      set up .venv and run the end-to-end demo (synthetic city -> map + report)"
	@echo "make test      set up .venv with dev extras and run the default test selection"
	@echo "make test-all  all tests, including slow ones"
	@echo "make test-browser  the report's map in headless chromium (scripts/install-chromium.sh)"
	@echo "make test-integration  a real Label Studio round trip (scripts/label-studio-env.sh)"
	@echo "make bench     run benchmarks/ and print results (record them in BENCHMARKS.md)"
	@echo "make lint      ruff (incl. docstring/annotation rules for src) + mypy against tools/mypy-baseline.txt"

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml constraints.txt | $(PY)
	$(PIP) install -q -c constraints.txt torch==2.13.0
	$(PIP) install -q -c constraints.txt -e .
	@touch $@

$(DEVSTAMP): $(STAMP)
	$(PIP) install -q -c constraints.txt -e '.[dev]'
	@touch $@

install: $(STAMP)

dev: $(DEVSTAMP)

demo: $(STAMP)
	$(VENV)/bin/landforge demo --out $(DEMO_OUT)

test: $(DEVSTAMP)
	$(PY) -m pytest -q

test-all: $(DEVSTAMP)
	$(PY) -m pytest -q -m "slow or not slow"

test-browser: $(DEVSTAMP)
	-scripts/install-chromium.sh
	$(PY) -m pytest -q -m browser -rs

# label-studio goes into its own venv (.venv-label-studio/); without it the test skips
test-integration: $(DEVSTAMP)
	$(PIP) install -q -c constraints.txt -e '.[dev,labelling]'
	-scripts/label-studio-env.sh
	$(PY) -m pytest -q -m integration -rs

bench: $(DEVSTAMP)
	$(PIP) install -q -c constraints.txt -e '.[dev,bench]'
	$(PY) benchmarks/run_all.py

lint: $(DEVSTAMP)
	$(VENV)/bin/ruff check src tests benchmarks tools
	$(PY) tools/mypy_baseline.py

clean:
	rm -rf $(VENV) runs .pytest_cache
