# account_engagement: `make demo` and `make test` are the two commands; both set up .venv first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint pytest dbt-test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## make demo: synthetic organisation -> Graph emulator -> loaders -> dbt build
demo: $(STAMP)
	$(BIN)/python -m loaders.demo

## make test: everything CI checks
test: lint pytest dbt-test

lint: $(STAMP)
	$(BIN)/ruff check loaders tests
	$(BIN)/sqlfluff lint models macros tests --disable-progress-bar

pytest: $(STAMP)
	$(BIN)/pytest -q

dbt-test: $(STAMP)
	DUCKDB_PATH=$(CURDIR)/.test/warehouse.duckdb $(BIN)/python -m loaders.demo --workdir .test \
		--mailboxes 8 --accounts 60 --messages-per-mailbox 300 --as-of 2026-06-30 --no-progress

## make bench: loader throughput against the emulator (vs DuckDB's own JSON ingest), then the
## transformation benchmark (dbt build over a year of raw data written straight into DuckDB)
TRANSFORM_MAILBOXES ?= 100
bench: $(STAMP)
	$(BIN)/python -m loaders.bench
	$(BIN)/python -m loaders.bench_transform --mailboxes $(TRANSFORM_MAILBOXES)

clean:
	rm -rf $(VENV) .test demo target logs dbt_packages warehouse.duckdb warehouse.duckdb.wal
