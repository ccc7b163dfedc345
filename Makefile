# Two commands do everything from a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PG_URL ?= postgresql+psycopg2://postgres@127.0.0.1:5432/test

.PHONY: demo test install install-ui install-test browser lint dagster benchmark clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .

install-ui: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[ui]"

install-test: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"

demo: install
	$(BIN)/persona-pipeline demo

# The report test drives a real headless Chromium through chromedriver (Debian's packages).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  echo "installing chromium and chromium-driver (Debian packages) for the report test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }

test: install-test browser
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/dg check defs
	PERSONA_TEST_PG_URL=$(PG_URL) $(BIN)/python -m pytest -n 3 --dist loadfile -q

# dg dev: webserver, daemon and code server for the project in pyproject.toml; Ctrl-C stops all of them
dagster: install-ui
	DAGSTER_HOME=$${DAGSTER_HOME:-$${PERSONA_HOME:-$(CURDIR)/.persona_home}/dagster} $(BIN)/dg dev

benchmark: install
	PERSONA_WAREHOUSE_URL=$(PG_URL) $(BIN)/python benchmarks/build.py

clean:
	rm -rf .persona_home
