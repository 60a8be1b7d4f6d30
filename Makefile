# Two commands for a newcomer: `make demo` and `make test`. Both create .venv first.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.hwlat-installed

.PHONY: setup test test-fast lint typecheck pytest demo clean

setup: $(STAMP)

# Re-installs only when the dependency files change, so a second `make setup` is a no-op.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

pytest: setup
	$(BIN)/pytest -q

test: lint typecheck pytest

# Everything but the tests marked `slow` (each over 10 s), on two workers, in under 3
# minutes: the loop while working. `make test` runs them all, one at a time (the timing
# tests measure best alone), and is what CI runs.
test-fast: setup
	$(BIN)/ruff check .
	$(BIN)/pytest -q -m "not slow" -n 2

# `make demo DEMO_ARGS=--keep-serving` keeps the service and its dashboard up until Ctrl-C
demo: setup
	$(BIN)/hwlat demo $(DEMO_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
