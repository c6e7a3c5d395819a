# Conversion Relay — every target bootstraps the virtual environment it needs (.venv).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# sam build targets python3.13: the first python3.13 that runs (a pyenv shim may not), else pyenv's.
PY313_DIR := $(shell for p in "$$(command -v python3.13 2>/dev/null)" $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.13*/bin/python3.13; do \
	if [ -n "$$p" ] && "$$p" -c "" >/dev/null 2>&1; then dirname "$$p"; break; fi; done)
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export SAM_CLI_TELEMETRY := 0
PORT ?= 3000
EVENT ?= events/stripe/checkout_session_completed.json
RELAY_CONFIG ?= config/relay.local.yaml

.PHONY: help venv lint validate check-config test test-unit test-integration test-e2e fuzz build run send status bench clean

help:
	@echo "make run      start the whole relay locally (no Docker, no AWS account)"
	@echo "make send     sign and post EVENT=<file> to the local stack"
	@echo "make status   per-vendor delivery status of the local stack"
	@echo "make test     lint, sam validate --lint, check-config, unit + integration + e2e tests"
	@echo "make fuzz     the property tests' long Hypothesis profile and the slow worst-case checks"
	@echo "make build    sam build (python3.13, arm64)"
	@echo "make bench    benchmarks (prints a table, writes bench/results/*.json)"

$(STAMP): pyproject.toml layers/relay/requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

validate: $(STAMP)
	$(BIN)/sam validate --lint --region us-east-1

check-config: $(STAMP)
	$(BIN)/relay check-config config/deploy/relay.yaml
	$(BIN)/relay check-config config/relay.local.yaml

test: lint validate check-config
	$(BIN)/python -m pytest tests -m "not fuzz"

test-unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

test-integration: $(STAMP)
	$(BIN)/python -m pytest tests/integration

test-e2e: $(STAMP)
	$(BIN)/python -m pytest tests/e2e

# The property and hostile-input tests with the long Hypothesis profile (every wrong value at
# every path too), then the tests marked fuzz (none is an exit status of 5). Prints the inputs
# each source was sent and the 5xx seen; bench/results/fuzz.json keeps them.
FUZZ_TESTS := tests/integration/test_properties.py tests/integration/test_hostile_input.py \
	tests/unit/test_json_body.py tests/unit/test_money_rules.py
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest $(FUZZ_TESTS) --timeout 3600 -q -p no:cacheprovider
	@echo "inputs each source was sent, and the 5xx seen:" && cat bench/results/fuzz.json
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest tests -m fuzz --timeout 3600 -q || test $$? -eq 5

build: $(STAMP)
	@test -n "$(PY313_DIR)" || { echo "python3.13 not found (install it with pyenv: pyenv install 3.13)"; exit 1; }
	PATH="$(PY313_DIR):$$PATH" $(BIN)/sam build --region us-east-1

# MOTO_PORT, RETRY_DELAY_SCALE, BATCHING_WINDOW and the *_WEBHOOK_SECRET overrides reach
# relay-local from the environment or the make command line (docs/local-stack.md).
run: $(STAMP)
	@PORT=$(PORT) RELAY_CONFIG=$(RELAY_CONFIG) $(BIN)/relay-local run

send: $(STAMP)
	@$(BIN)/relay-local send $(EVENT) --port $(PORT)

status: $(STAMP)
	@$(BIN)/relay-local status --port $(PORT)

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .aws-sam .pytest_cache .ruff_cache bench/results
