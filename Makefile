# SSO Contribution Gateway: the entry points a person (and CI) runs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_PERSONS ?= 200000
# Every package at the version and hashes these lock files name (make lock writes them from
# pyproject.toml): the service's for the image, the service's plus the tools' for the rest.
LOCK := requirements.lock
DEV_LOCK := requirements-dev.lock
UV_VERSION := 0.13.9
UV_COMPILE := $(BIN)/uv pip compile --universal --python-version 3.11 --generate-hashes \
	--quiet --custom-compile-command "make lock" pyproject.toml $(VENV)/build-requires.in

.PHONY: run test test-fast lint lock contracts-bite fmt openapi bench clean-data help

help:
	@echo "make run    set everything up (venv, PostgreSQL pair, migrations, demo data) and serve"
	@echo "make test   run the whole test suite against a PostgreSQL pair it starts itself"
	@echo "            (business time pinned: SSOGW_TEST_BUSINESS_TIME=23:30 make test, see tests/support/clock.py)"
	@echo "make test-fast  unit and contract tests only: no PostgreSQL, under a minute"
	@echo "make lint   ruff, mypy --strict, import-linter contracts"
	@echo "make fmt    format the code"
	@echo "make bench  the performance benchmark (bench/README.md); BENCH_ARGS=\"--persons 13000000\""
	@echo "make lock   pin every dependency again from pyproject.toml (requirements*.lock)"

# The locked versions, each file checked against its hash; then the project itself, with no
# dependency of its own left to resolve (its build backend is locked too). `pip check` fails
# when pyproject.toml asks for something the lock does not hold: run `make lock`.
$(STAMP): pyproject.toml $(LOCK) $(DEV_LOCK)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r $(DEV_LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check || { echo "pyproject.toml and $(DEV_LOCK) differ: make lock" >&2; exit 1; }
	@touch $(STAMP)

# Resolves for Python 3.11 and later on every platform (markers kept), with the hashes of every
# file of each pinned version. Not a prerequisite of anything: locks change only on purpose.
lock:
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet "uv==$(UV_VERSION)"
	$(BIN)/python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]))' > $(VENV)/build-requires.in
	$(UV_COMPILE) -o $(LOCK)
	$(UV_COMPILE) --extra dev -o $(DEV_LOCK)

run: $(STAMP)
	$(BIN)/ssogw db up
	$(BIN)/ssogw migrate
	$(BIN)/ssogw demo --persons $(DEMO_PERSONS)
	$(BIN)/ssogw serve

# pytest-xdist workers: one for each CPU this process may use (its affinity and its cgroup's
# quota, as `ssogw serve` counts them: app/workers/cpus.py), at most four.
TEST_WORKERS = -n $$($(BIN)/python -c 'from app.workers.cpus import usable_cpus; print(min(4, usable_cpus()))')

# Two phases. First every test that does not hold the wall clock to a bound, on the workers
# (each starts its own PostgreSQL pair). Then those that do (marked `serial`: latency bounds,
# timeouts, timings compared, the reliability suite), alone on the machine, where another
# worker's load cannot push them past their bounds. The second runs even when the first
# fails, so that one run reports every failure; not when it was interrupted (exit 2: Ctrl-C,
# or tests that could not be collected).
test: $(STAMP)
	scripts/ensure-os-tools
	status=0; \
	$(BIN)/python -m pytest -q -p no:cacheprovider $(TEST_WORKERS) -m "not serial" || status=$$?; \
	[ $$status -ne 2 ] || exit 2; \
	$(BIN)/python -m pytest -q -p no:cacheprovider -m serial || status=$$?; \
	exit $$status

# Unit and contract tests: pure functions, the SOAP layer over a fake service, the XSD/WSDL and
# golden files. None of them asks for the session's PostgreSQL pair, so none is started. The
# partner toolkit tests (JAX-WS wsimport + javac, node-soap; marked `toolkit`) run in `make test`.
# On the test workers (above): a third of the tests' time is waiting on timers and threads.
FAST_TESTS := tests/unit tests/contract
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider $(TEST_WORKERS) -m "not toolkit" $(FAST_TESTS)

lint: $(STAMP)
	$(BIN)/ruff check app tests bench
	$(BIN)/ruff format --check app tests bench
	$(BIN)/mypy app
	$(BIN)/lint-imports

# Each import-linter contract shown failing on a deliberate violation (~30 s; edits and restores
# one module per contract, so not part of `make lint`).
contracts-bite: $(STAMP)
	LINT_IMPORTS=$(BIN)/lint-imports scripts/check-contracts-bite

fmt: $(STAMP)
	$(BIN)/ruff check --fix app tests bench
	$(BIN)/ruff format app tests bench

# Not part of `make test`: about 30 minutes on 2 cores, and it prints and records (bench/RESULTS.md)
# figures, not pass/fail. Its PostgreSQL pair lives in bench/out/data, never in .data.
BENCH_ARGS ?=
bench: $(STAMP)
	scripts/ensure-os-tools
	$(BIN)/python -m bench.run $(BENCH_ARGS)

openapi: $(STAMP)
	$(BIN)/python -m app.cli.openapi_export openapi/openapi.json

clean-data:
	-$(BIN)/ssogw db down
	rm -rf .data
