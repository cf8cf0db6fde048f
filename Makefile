# The two commands of the README: `make run` serves the demo on SQLite, `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint format migrate bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/zariz migrate
	$(BIN)/zariz seed-demo
	@echo "Zariz on http://127.0.0.1:8000 — interactive docs at http://127.0.0.1:8000/docs"
	@echo "Console: http://127.0.0.1:8000/console — sign in with a demo login above (admin@zariz.demo or store@zariz.demo)"
	$(BIN)/zariz serve --host 127.0.0.1 --port 8000

test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy app tests $(wildcard bench/*.py)

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

migrate: $(STAMP)
	$(BIN)/zariz migrate

bench: $(STAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
