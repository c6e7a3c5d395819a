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

.PHONY: help venv lint validate check-config test test-unit test-integration test-e2e build run send status bench clean

help:
	@echo "make run      start the whole relay locally (no Docker, no AWS account)"
	@echo "make send     sign and post EVENT=<file> to the local stack"
	@echo "make status   per-vendor delivery status of the local stack"
	@echo "make test     lint, sam validate --lint, check-config, unit + integration + e2e tests"
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
	$(BIN)/python -m pytest tests

test-unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

test-integration: $(STAMP)
	$(BIN)/python -m pytest tests/integration

test-e2e: $(STAMP)
	$(BIN)/python -m pytest tests/e2e

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

# Cold init is timed with python3.13, what Lambda runs: a venv with the layer's requirements and
# boto3 at the versions of .venv (bench/bench_ingest.py uses it when it exists).
VENV313 := .venv313
STAMP313 := $(VENV313)/.installed
$(STAMP313): $(STAMP) layers/relay/requirements.txt
	@test -n "$(PY313_DIR)" || { echo "python3.13 not found: cold init is timed with $$($(BIN)/python -V)"; exit 0; }; \
	set -e; "$(PY313_DIR)/python3.13" -m venv $(VENV313); \
	$(BIN)/python -m pip freeze | grep -v -e '^-e' -e ' @ ' > $(VENV313)/constraints.txt; \
	$(VENV313)/bin/python -m pip install --quiet -c $(VENV313)/constraints.txt -r layers/relay/requirements.txt boto3; \
	touch $(STAMP313)

bench: $(STAMP) $(STAMP313)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(VENV313) .aws-sam .pytest_cache .ruff_cache bench/results
