# Two commands a fresh machine needs: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test check lint typecheck bench clean

# (Re)install when the venv is missing or pyproject.toml changed.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m genbatch demo

# The suite, after the style and type gates CI must hold (ruff and mypy are pinned in pyproject).
# Two workers, a test file each at a time (module fixtures such as the Ray cluster
# start once): most of a test's time is waiting on simulated jobs, not CPU.
PYTEST := $(BIN)/python -m pytest -q -p no:cacheprovider -n 2 --dist loadfile

test: lint typecheck
	$(PYTEST)

# The inner loop: the same gates, the suite without the fault matrix and the slow runs.
check: lint typecheck
	$(PYTEST) -m "not reliability and not slow"

lint: $(STAMP)
	$(BIN)/ruff check genbatch tests benchmarks scripts
	$(BIN)/ruff format --check genbatch tests benchmarks scripts

typecheck: $(STAMP)
	$(BIN)/mypy


bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
