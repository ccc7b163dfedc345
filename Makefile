# Two commands do everything from a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PG_URL ?= postgresql+psycopg2://postgres@127.0.0.1:5432/test

.PHONY: demo test install install-test lint dagster benchmark clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .

install-test: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"

demo: install
	$(BIN)/persona-pipeline demo

test: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	PERSONA_TEST_PG_URL=$(PG_URL) $(BIN)/python -m pytest -n 2 --dist loadfile -q

dagster: install
	DAGSTER_HOME=$${DAGSTER_HOME:-$(CURDIR)/.persona_home/dagster} $(BIN)/dagster dev -w workspace.yaml

benchmark: install
	PERSONA_WAREHOUSE_URL=$(PG_URL) $(BIN)/python benchmarks/build.py

clean:
	rm -rf .persona_home
