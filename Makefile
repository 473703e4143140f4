# account_engagement: `make demo` and `make test` are the two commands; both set up .venv first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup chromium databricks-venv demo cards docs test lint pytest dbt-test bench bench-peer \
	spark-server spark-server-stop clean

setup: $(STAMP) chromium

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,postgres,spark]'
	touch $(STAMP)

## Debian's Chromium for the customer-card browser test (Playwright drives it; it never
## downloads a browser). Best effort: without it that test skips and says why.
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		echo "Installing Debian's chromium for the browser test (apt-get)..."; \
		{ $$SUDO apt-get update -qq && \
		  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; } \
		|| echo "Could not install Chromium (apt-get failed); the customer-card browser test will be skipped."; \
	fi

## make databricks-venv: dbt-databricks (the `databricks` extra) in a venv of its own,
## .venv-databricks: it needs a dbt-spark older than the `spark` extra's, so it cannot sit in
## .venv. `make test` makes it (~1 min) for the test that parses the project on it.
DATABRICKS_VENV := .venv-databricks
databricks-venv: $(DATABRICKS_VENV)/.installed

$(DATABRICKS_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(DATABRICKS_VENV)
	printf '*\n' > $(DATABRICKS_VENV)/.gitignore  # git ignores it (as venv does from 3.13 on)
	$(DATABRICKS_VENV)/bin/pip install --quiet --upgrade pip
	$(DATABRICKS_VENV)/bin/pip install --quiet -e '.[databricks]'
	touch $@

## make demo: synthetic organisation -> Graph emulator -> loaders -> dbt build
demo: $(STAMP)
	$(BIN)/python -m devtools.demo

## make cards: rebuild the customer cards from the warehouse ($$DUCKDB_PATH; the marts in schema
## $$ACCOUNT_ENGAGEMENT_SCHEMA, else main) after a dbt build
cards: $(STAMP)
	$(BIN)/account-engagement cards

## make docs: the dbt documentation site (lineage from the loaders' sources to the exposures)
## on http://127.0.0.1:8080
DOCS_PORT ?= 8080
docs: $(STAMP)
	$(BIN)/dbt docs generate --profiles-dir .
	$(BIN)/dbt docs serve --profiles-dir . --host 127.0.0.1 --port $(DOCS_PORT) --no-browser

## make test: everything CI checks
test: chromium databricks-venv lint pytest dbt-test

lint: $(STAMP)
	$(BIN)/ruff check loaders account_engagement_cards account_engagement_parquet devtools bench tests
	$(BIN)/sqlfluff lint models macros tests integration_tests/models --disable-progress-bar

pytest: $(STAMP)
	$(BIN)/pytest -q

dbt-test: $(STAMP)
	DUCKDB_PATH=$(CURDIR)/.test/warehouse.duckdb $(BIN)/python -m devtools.demo --workdir .test \
		--mailboxes 8 --accounts 60 --messages-per-mailbox 300 --as-of 2026-06-30 --no-progress

## make bench: loader throughput against the emulator (vs DuckDB's own JSON ingest), the loader
## against dlt (bench-peer), then the transformation benchmark (dbt build over a year of raw
## data written straight into DuckDB), on DuckDB and, beside it, on a throwaway PostgreSQL
## server (--postgres) and a local Spark Thrift server (--spark)
TRANSFORM_MAILBOXES ?= 100
bench: $(STAMP)
	$(BIN)/python -m bench.loader
	$(BIN)/python -m bench.dlt_peer --mailboxes $(PEER_MAILBOXES)
	$(BIN)/python -m bench.transform --mailboxes $(TRANSFORM_MAILBOXES) --postgres --spark

## make bench-peer: our Graph loader against dlt's REST API source on the same emulator, landed
## counts checked equal (bench/README.md); dlt runs in its own venv, .bench/dlt-venv
PEER_MAILBOXES ?= 20
bench-peer: $(STAMP)
	$(BIN)/python -m bench.dlt_peer --mailboxes $(PEER_MAILBOXES)

## make spark-server: a local Spark Thrift server from the pinned pyspark on
## $$SPARK_HOST:$$SPARK_PORT (127.0.0.1:10000), its metastore, warehouse, log and pid under
## .spark/, started in the project root (a relative PARQUET_DIR or SPARK_RAW_PATH means the
## same folder to it as to dbt); returns once it answers. make spark-server-stop ends it.
spark-server: $(STAMP)
	$(BIN)/python tests/python/spark_server.py start --dir .spark

spark-server-stop:
	@if [ -x $(BIN)/python ]; then $(BIN)/python tests/python/spark_server.py stop --dir .spark; \
	else echo "no .venv: no Spark Thrift server was started from here."; fi

clean:
	rm -rf $(VENV) $(DATABRICKS_VENV) .test demo target logs dbt_packages warehouse.duckdb warehouse.duckdb.wal \
		parquet customer_cards spark_raw .spark
