# Conversion Relay — every target bootstraps the virtual environment it needs (.venv).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Two stamps: the local stack and the `relay` CLI need only the `local` extra (~40 s, ~390 MB,
# mostly moto and boto3); the dev toolchain (SAM CLI, cfn-lint, pytest, ruff) only
# test/lint/build/bench.
STAMP_LOCAL := $(VENV)/.installed-local
STAMP := $(VENV)/.installed
# sam build targets python3.13: the first python3.13 that runs (a pyenv shim may not), else pyenv's.
PY313_DIR := $(shell for p in "$$(command -v python3.13 2>/dev/null)" $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.13*/bin/python3.13; do \
	if [ -n "$$p" ] && "$$p" -c "" >/dev/null 2>&1; then dirname "$$p"; break; fi; done)
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export SAM_CLI_TELEMETRY := 0
PORT ?= 3000
EVENT ?= events/stripe/checkout_session_completed.json
RELAY_CONFIG ?= config/relay.local.yaml
# check-config checks RELAY_CONFIG when you give it (make check-config RELAY_CONFIG=my.yaml),
# else both committed configs.
CHECK_CONFIGS := $(if $(filter command line environment,$(origin RELAY_CONFIG)),$(RELAY_CONFIG),config/deploy/relay.yaml config/relay.local.yaml)

.PHONY: help venv lint validate check-config test test-unit test-integration test-e2e fuzz build lock run send status try backfill bench clean

help: ## this list
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z0-9-]+):.*## (.*)/\1\t\2/' | \
		awk -F '\t' '{printf "make %-17s %s\n", $$1, $$2}'

$(STAMP_LOCAL): pyproject.toml layers/relay/requirements.in
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[local]'
	touch $(STAMP_LOCAL)

$(STAMP): $(STAMP_LOCAL)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP) ## create .venv with everything (make run needs only the local stack's part)

lint: $(STAMP) ## ruff check + ruff format --check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

validate: $(STAMP) ## sam validate --lint (the template, with cfn-lint)
	$(BIN)/sam validate --lint --region us-east-1

check-config: $(STAMP_LOCAL) ## relay check-config: RELAY_CONFIG=<file> if given, else both committed configs
	$(BIN)/relay check-config $(CHECK_CONFIGS)

test: lint validate check-config ## lint, sam validate --lint, check-config, unit + integration + e2e tests
	$(BIN)/python -m pytest tests -m "not fuzz"

test-unit: $(STAMP) ## unit tests only (offline)
	$(BIN)/python -m pytest tests/unit

test-integration: $(STAMP) ## integration tests only (moto + sandboxes on loopback)
	$(BIN)/python -m pytest tests/integration

test-e2e: $(STAMP) ## end-to-end tests only (the local stack, a headless browser)
	$(BIN)/python -m pytest tests/e2e

# The property and hostile-input tests with the long Hypothesis profile (every wrong value at
# every path too), then the tests marked fuzz (none is an exit status of 5). Prints the inputs
# each source was sent and the 5xx seen; bench/results/fuzz.json keeps them.
FUZZ_TESTS := tests/integration/test_properties.py tests/integration/test_hostile_input.py \
	tests/unit/test_json_body.py tests/unit/test_money_rules.py
fuzz: $(STAMP) ## the property tests' long Hypothesis profile and the slow worst-case checks (-m fuzz)
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest $(FUZZ_TESTS) --timeout 3600 -q -p no:cacheprovider
	@echo "inputs each source was sent, and the 5xx seen:" && cat bench/results/fuzz.json
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest tests -m fuzz --timeout 3600 -q || test $$? -eq 5

build: $(STAMP) ## sam build (python3.13, arm64)
	@test -n "$(PY313_DIR)" || { echo "python3.13 not found (install it with pyenv: pyenv install 3.13)"; exit 1; }
	PATH="$(PY313_DIR):$$PATH" $(BIN)/sam build --region us-east-1

# The layer's lock: every package `sam build` installs, pinned with hashes and resolved for the
# Lambda runtime (python3.13, arm64) from the floors in requirements.in. Run after editing them;
# existing pins are kept where they still fit, UPGRADE=1 takes the newest releases.
LAYER_REQUIREMENTS := layers/relay/requirements
lock: $(STAMP) ## re-pin the layer's requirements.txt (hashes) from requirements.in (UPGRADE=1: newest)
	$(BIN)/python -m pip install --quiet "uv>=0.5"
	$(BIN)/uv pip compile $(LAYER_REQUIREMENTS).in --quiet --generate-hashes \
		--python-platform aarch64-manylinux2014 --python-version 3.13 \
		--custom-compile-command "make lock" $(if $(UPGRADE),--upgrade) -o $(LAYER_REQUIREMENTS).txt

# MOTO_PORT, RETRY_DELAY_SCALE, BATCHING_WINDOW and the *_WEBHOOK_SECRET overrides reach
# relay-local from the environment or the make command line (docs/local-stack.md).
run: $(STAMP_LOCAL) ## start the whole relay locally (no Docker, no AWS account); dashboard at /_local/
	@PORT=$(PORT) RELAY_CONFIG=$(RELAY_CONFIG) $(BIN)/relay-local run

send: $(STAMP_LOCAL) ## sign and post EVENT=<file> to the local stack (FRESH=1: new event and order ids)
	@$(BIN)/relay-local send $(EVENT) --port $(PORT) $(if $(filter-out 0,$(FRESH)),--fresh)

status: $(STAMP_LOCAL) ## what the local stack delivered, retried, dead-lettered (relay status --local)
	@PORT=$(PORT) $(BIN)/relay status --local

try: $(STAMP_LOCAL) ## what EVENT=<file> would send to each vendor (relay try; no AWS, nothing sent)
	@$(BIN)/relay try $(EVENT)

# `relay backfill --local` against the running stack's provider sandboxes (docs/guarantees.md).
SINCE ?= 2h
backfill: $(STAMP_LOCAL) ## relay what the local providers hold: SOURCE=stripe SINCE=2h [DESTINATION=d] [DRY_RUN=1]
	@$(BIN)/relay backfill --local --since $(SINCE) $(if $(SOURCE),--source $(SOURCE)) \
		$(if $(DESTINATION),--destination $(DESTINATION)) $(if $(DRY_RUN),--dry-run)

# Cold init is timed with python3.13, what Lambda runs: a venv with the layer's locked requirements
# and boto3 at the version of .venv (bench/bench_ingest.py uses it when it exists).
VENV313 := .venv313
STAMP313 := $(VENV313)/.installed
$(STAMP313): $(STAMP) layers/relay/requirements.txt
	@test -n "$(PY313_DIR)" || { echo "python3.13 not found: cold init is timed with $$($(BIN)/python -V)"; exit 0; }; \
	set -e; "$(PY313_DIR)/python3.13" -m venv $(VENV313); \
	$(VENV313)/bin/python -m pip install --quiet --require-hashes -r layers/relay/requirements.txt; \
	$(BIN)/python -m pip freeze | grep -i -E '^(boto3|botocore|s3transfer)==' > $(VENV313)/constraints.txt; \
	$(VENV313)/bin/python -m pip install --quiet -c $(VENV313)/constraints.txt boto3; \
	touch $(STAMP313)

bench: $(STAMP) $(STAMP313) ## benchmarks (prints a table, writes bench/results/*.json)
	$(BIN)/python -m bench

clean: ## remove .venv, build output and caches
	rm -rf $(VENV) $(VENV313) .aws-sam .pytest_cache .ruff_cache bench/results
