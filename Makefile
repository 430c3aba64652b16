# Two entry points: `make run` starts the service, `make test` runs every test.
# Both set up what they need first (a virtualenv; Debian's chromium for the browser test,
# Debian's postgresql for the tests that start a throwaway PostgreSQL cluster).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python

.PHONY: run test test-fast lint bench chromium postgres

$(VENV)/.runtime: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

run: $(VENV)/.runtime
	$(PY) main.py

chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null); \
	  elif command -v sudo >/dev/null 2>&1; then \
	    (sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null); \
	  else echo "chromium is missing: the browser test will be skipped (outside CI)"; fi; }

# initdb and pg_ctl: on PATH, or in Debian's /usr/lib/postgresql/<version>/bin.
PG_BIN = $(firstword $(dir $(shell command -v pg_ctl 2>/dev/null)) $(wildcard /usr/lib/postgresql/*/bin/))

postgres:
	@if [ -n "$(PG_BIN)" ] && [ -x "$(PG_BIN)initdb" ] && [ -x "$(PG_BIN)pg_ctl" ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null); \
	elif command -v sudo >/dev/null 2>&1; then \
	    (sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null); \
	else echo "postgresql is missing: its tests will be skipped (outside CI)"; fi

lint: $(VENV)/.dev
	$(PY) -m ruff check .
	$(PY) -m mypy

test: $(VENV)/.dev chromium postgres lint
	$(PY) -m pytest

test-fast: $(VENV)/.dev
	$(PY) -m pytest -m "not slow"

bench: $(VENV)/.dev
	$(PY) bench/run_all.py
