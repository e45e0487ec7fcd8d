# The verbs a newcomer needs. Everything runs inside .venv, created on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint fmt typecheck unit integration bench demo clean install

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## run: start PostgreSQL, the broker and every service on embedded defaults (Ctrl-C stops all)
run: $(STAMP)
	$(BIN)/python -m callbacks.devstack

## test: lint, type-check and run the whole suite
test: $(STAMP) lint typecheck
	$(BIN)/python -m pytest -q -p no:cacheprovider

unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

integration: $(STAMP)
	$(BIN)/python -m pytest -q tests/integration tests/e2e

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy shared/callbacks services/profile-api/profile_api services/dispatcher/dispatcher services/reporter/reporter

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## bench: throughput, latency, API and reporter figures (contract §9)
bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .devstack .mypy_cache .ruff_cache .pytest_cache build *.egg-info
