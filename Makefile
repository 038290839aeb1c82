# DIAT Studio — all set-up goes through these targets. Only python3 (>= 3.10) is needed up front.
PYTHON ?= python3
VENV   ?= .venv
VPY    := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test lint bench venv clean package smoke-package gpu-pack

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

# A one-folder, double-clickable build in dist/diat-studio (no Python needed on the target machine).
package: $(STAMP)
	$(VPY) -m pip install --quiet -e ".[package]"
	$(VENV)/bin/pyinstaller --noconfirm --clean --log-level WARN --distpath dist --workpath build/pyinstaller \
		packaging/diat-studio.spec
	@du -sh dist/diat-studio

# Builds the bundle, then runs the built executable: the window offscreen on the sample photo, and the
# batch subcommand on two photos. Minutes, so not part of `make test`.
smoke-package: package
	@if ls resources/models/*/manifest.json >/dev/null 2>&1; then \
		bash packaging/smoke_test.sh dist/diat-studio; \
	else \
		echo "No bundled model yet: the batch step uses a test fixture model (a colour transform)."; \
		$(VPY) -c "from pathlib import Path; from tests.onnx_fixtures import model_folder; \
			model_folder(Path('build/smoke-models'), 'fixture-edit')" && \
		MODELS_DIR=build/smoke-models EDIT=fixture-edit bash packaging/smoke_test.sh dist/diat-studio; \
	fi

# Everything a lent GPU needs, prepared on this side (docs/TRAINING.md, "Training on a lent GPU"): the
# held-out-split dataset and the classifiers unless done (CPU minutes to hours), then the pack; it prints what must
# travel, the exact command and its time limit, where the results land and how to import them.
gpu-pack: $(STAMP)
	@test -f data/wild/prepare.json || bash scripts/train_bundled.sh prepare
	bash scripts/train_bundled.sh classifiers
	$(VENV)/bin/diat-studio-train pack data/wild build/gpu-pack --force

clean:
	rm -rf $(VENV) build dist *.egg-info
