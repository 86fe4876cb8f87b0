# `make run` and `make test` work on a fresh machine: each creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench install install-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

run: install
	$(BIN)/drip init
	$(BIN)/drip run

test: install-test
	$(BIN)/python -m pytest

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

bench: install-test
	$(BIN)/python bench/render.py
	$(BIN)/python bench/dispatch.py --db sqlite
	$(BIN)/python bench/dispatch.py --db postgresql
	$(BIN)/python bench/idle.py --db sqlite
	$(BIN)/python bench/idle.py --db postgresql
	$(BIN)/python bench/scale.py --connections 1
	$(BIN)/python bench/scale.py

clean:
	rm -rf $(VENV) build *.egg-info outbox drip.db drip.db-wal drip.db-shm
