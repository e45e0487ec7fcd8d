# The verbs a newcomer needs. Everything runs inside .venv, created on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint fmt typecheck unit integration bench demo clean install lock audit

# Dependencies come from the lock (exact versions, every file checked against its hash);
# the project and its dev tools (devtools/: the local stack, the simulator) go on top,
# editable, without resolving anything again.
$(STAMP): pyproject.toml devtools/pyproject.toml requirements-dev.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps -e . -e devtools
	touch $(STAMP)

install: $(STAMP)

## run: start PostgreSQL, the broker and every service on embedded defaults (Ctrl-C stops all)
## (BROKER=kafka: the same stack on a local 3-node Apache Kafka cluster instead of Tansu)
BROKER ?= tansu
run: $(STAMP)
	$(BIN)/python -m callbacks_dev.devstack --broker $(BROKER)

## test: lint, type-check, audit the locked dependencies and run the whole suite
test: $(STAMP) lint typecheck audit
	$(BIN)/python -m pytest -q -p no:cacheprovider

## audit: known vulnerabilities in the locked set (README "Security"); an unreachable
## advisory source is a warning, a known vulnerability a failure
audit: $(STAMP)
	$(BIN)/python deploy/audit.py

## lock: pin every dependency with hashes (the image installs requirements.lock, CI the dev one)
LOCK_FLAGS := --quiet --generate-hashes --strip-extras --allow-unsafe --no-emit-index-url --no-emit-find-links
lock: $(STAMP)
	$(BIN)/pip-compile $(LOCK_FLAGS) -o requirements.lock pyproject.toml
	$(BIN)/pip-compile $(LOCK_FLAGS) --extra dev -o requirements-dev.lock pyproject.toml

unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

integration: $(STAMP)
	$(BIN)/python -m pytest -q tests/integration tests/e2e

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy shared/callbacks services/profile-api/profile_api services/dispatcher/dispatcher services/reporter/reporter devtools/callbacks_dev

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## bench: throughput, latency, API and reporter figures (contract §9)
bench: $(STAMP)
	$(BIN)/python -m bench

## demo: with `make run` going in another terminal, play the gateways and watch callbacks arrive
## (options: make demo DEMO_ARGS="--rate 200 --duration 30 --failure-share 0.2 --seed 7")
DEMO_ARGS ?= --rate 50 --duration 60 --failure-share 0.05
demo: $(STAMP)
	$(BIN)/python -m callbacks_dev.simulator $(DEMO_ARGS)

clean:
	rm -rf $(VENV) .devstack .mypy_cache .ruff_cache .pytest_cache build *.egg-info devtools/*.egg-info
