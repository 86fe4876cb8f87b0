# `make run` and `make test` work on a fresh machine: each creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
# Quiet installs: setuptools' note on every editable install, and pip's notes about index
# folders a machine's pip.conf may name without having them, say nothing to act on.
PIP := PYTHONWARNINGS="ignore:Editable installation" \
	$(BIN)/python -m pip install --quiet --disable-pip-version-check
QUIET := 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
CHROMIUM := /usr/bin/chromium
DOVECOT := /usr/sbin/dovecot
SPAMASSASSIN := /usr/bin/spamassassin

.PHONY: run test lint bench install install-test browser imap-server spam-filter clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip $(QUIET)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) -e . $(QUIET)
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(PIP) -e '.[test,postgresql]' $(QUIET)
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

# The browser tests drive Debian's Chromium (a test tool's own browser download does not work).
browser:
	@if [ ! -x $(CHROMIUM) ]; then \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "Chromium is missing; install it with: sudo apt-get install -y chromium" >&2; exit 1; \
	  fi; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -q chromium >/dev/null \
	    || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }; \
	fi

# `drip bounces fetch` is tested against Debian's Dovecot, started by the tests on loopback.
imap-server:
	@if [ ! -x $(DOVECOT) ]; then \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "Dovecot is missing; install it with: sudo apt-get install -y dovecot-imapd" >&2; \
	    exit 1; \
	  fi; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -q dovecot-imapd >/dev/null \
	    || { apt-get update -q >/dev/null && apt-get install -y -q dovecot-imapd >/dev/null; }; \
	fi

# Every email drip writes is scored by Debian's SpamAssassin on its local rules in the tests.
spam-filter:
	@if [ ! -x $(SPAMASSASSIN) ]; then \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "SpamAssassin is missing; install it with: sudo apt-get install -y spamassassin" >&2; \
	    exit 1; \
	  fi; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -q spamassassin >/dev/null \
	    || { apt-get update -q >/dev/null && apt-get install -y -q spamassassin >/dev/null; }; \
	fi

run: install
	$(BIN)/drip init
	$(BIN)/drip run

test: install-test browser imap-server spam-filter
	$(BIN)/python -m pytest

# mypy finds the package by its name: a folder `drip` that is this tree.
lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	mkdir -p build/typecheck && ln -sfn ../.. build/typecheck/drip
	MYPYPATH=build/typecheck $(BIN)/mypy -p drip
	MYPYPATH=build/typecheck:tests:bench $(BIN)/mypy --explicit-package-bases tests bench

bench: install-test
	@command -v wrk >/dev/null || apt-get install -y -q wrk >/dev/null \
	  || { echo "bench/web.py needs wrk: sudo apt-get install -y wrk" >&2; exit 1; }
	$(BIN)/python bench/render.py
	$(BIN)/python bench/returned.py
	$(BIN)/python bench/receiver.py --db sqlite
	$(BIN)/python bench/receiver.py --db postgresql
	$(BIN)/python bench/dispatch.py --db sqlite
	$(BIN)/python bench/dispatch.py --db postgresql
	$(BIN)/python bench/idle.py --db sqlite
	$(BIN)/python bench/idle.py --db postgresql
	$(BIN)/python bench/fair.py --db sqlite
	$(BIN)/python bench/fair.py --db postgresql
	$(BIN)/python bench/scale.py --connections 1
	$(BIN)/python bench/scale.py
	$(BIN)/python bench/web.py
	$(BIN)/python bench/console.py --db sqlite
	$(BIN)/python bench/console.py --db postgresql

clean:
	rm -rf $(VENV) build *.egg-info outbox drip.db drip.db-wal drip.db-shm
