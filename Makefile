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
## (lint first; then the type check and the audit beside two pytest processes: the
## tests on the Apache Kafka cluster, the fleet fault tests and the deployment-file
## tests in one, one after another; the rest in the other. Each log is printed when
## all have finished.
## TEST_SPLIT=no: the checks, then the suite in one process.)
TEST_SPLIT ?= yes
SERIAL_TESTS := kafka_cluster or fleet or deploy
PYTEST := $(BIN)/python -m pytest -q -p no:cacheprovider --durations=10
ifeq ($(TEST_SPLIT),yes)
test: $(STAMP) lint
	@# Byte-code once, so the services the tests start as processes do not compile every
	@# module again at each start (the editable install leaves the sources uncompiled).
	@$(BIN)/python -m compileall -q -j 0 shared services devtools > /dev/null
	@mkdir -p .test-logs
	@$(MAKE) --no-print-directory typecheck audit > .test-logs/checks.log 2>&1 & checks=$$!; \
	$(PYTEST) -m "$(SERIAL_TESTS)" > .test-logs/kafka-and-fleet.log 2>&1 & serial=$$!; \
	$(PYTEST) -m "not ($(SERIAL_TESTS))" > .test-logs/rest.log 2>&1; rest=$$?; \
	wait $$serial; kafka=$$?; wait $$checks; checked=$$?; \
	echo "== type check and audit (exit $$checked)"; cat .test-logs/checks.log; \
	echo "== tests on the Apache Kafka cluster, fleet fault tests, deployment files (exit $$kafka)"; \
	cat .test-logs/kafka-and-fleet.log; \
	echo "== every other test (exit $$rest)"; cat .test-logs/rest.log; \
	test $$checked -eq 0 -a $$kafka -eq 0 -a $$rest -eq 0
else
test: $(STAMP) lint typecheck audit
	@$(BIN)/python -m compileall -q -j 0 shared services devtools > /dev/null
	$(PYTEST)
endif

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

# The JavaScript linters (ESLint, Prettier) at package-lock.json's versions, installed on first use.
NODE_STAMP := node_modules/.installed
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

lint: $(STAMP) $(NODE_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	npm run --silent lint

typecheck: $(STAMP)
	$(BIN)/mypy shared/callbacks services/profile-api/profile_api services/dispatcher/dispatcher services/reporter/reporter devtools/callbacks_dev

## fmt: format and fix what the linters can (Python with Ruff, JavaScript with Prettier and ESLint)
fmt: $(STAMP) $(NODE_STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
	npm run --silent fmt

## bench: throughput, latency, API and reporter figures (contract §9)
bench: $(STAMP)
	$(BIN)/python -m bench

## demo: with `make run` going in another terminal, play the gateways and watch callbacks arrive
## (options: make demo DEMO_ARGS="--rate 200 --duration 30 --failure-share 0.2 --seed 7")
DEMO_ARGS ?= --rate 50 --duration 60 --failure-share 0.05
demo: $(STAMP)
	$(BIN)/python -m callbacks_dev.simulator $(DEMO_ARGS)

## clean: remove what make created in the clone (the Maven cache for Apache Kafka lives outside it)
clean:
	rm -rf $(VENV) node_modules .test-logs .devstack .mypy_cache .ruff_cache .pytest_cache .hypothesis build *.egg-info devtools/*.egg-info
