# DIAT Studio — all set-up goes through these targets. Only python3 (>= 3.10) is needed up front.
PYTHON ?= python3
VENV   ?= .venv
VPY    := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test lint bench venv clean

# The venv is (re)built only when pyproject.toml changes: `make run` and `make test` stay idempotent.
$(STAMP): pyproject.toml
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip
	$(VPY) -m pip install --quiet -e ".[dev,train]"
	@touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/diat-studio resources/sample/astronaut.jpg

test: $(STAMP)
	$(VPY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check diat_studio trainer tests bench
	$(VENV)/bin/lint-imports

bench: $(STAMP)
	$(VPY) bench/bench_core.py

clean:
	rm -rf $(VENV) build *.egg-info
