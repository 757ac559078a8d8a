# `make run` and `make test` set everything up themselves; `make install` is idempotent and fast when nothing changed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[model,train,dev]'
	touch $(STAMP)

# The main job: an embedded ELM run on Sodarace with the real offline code model (pulled once, ~480 MB),
# about 10 minutes on a 2-core laptop, ending with runs/<date-time>/report.html.
RUN_MINUTES ?= 8
RUN_FLAGS ?=
run: install
	$(BIN)/elm run --minutes $(RUN_MINUTES) --budget 2000 $(RUN_FLAGS)

# The dashboard's browser tests use Debian's Chromium; the script installs it once where it can (root or sudo).
test: install
	deploy/scripts/install-browser.sh
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: install
	$(BIN)/python benchmarks/sim_bench.py

clean:
	rm -rf $(VENV) out .pytest_cache
