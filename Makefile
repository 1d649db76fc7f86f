# trivsel: everything a fresh machine with Python 3.11 needs, from the lock file.
#   make demo   set up, generate the sample deliveries, run the monthly DAG for every sample period
#   make test   set up and run the tests
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test test-fast up down status lint docs bench clean

$(STAMP): requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip==26.3"
	$(BIN)/pip install --quiet --requirement requirements.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation --editable .
	@touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/trivsel demo

test: install
	$(BIN)/pytest

test-fast: install
	$(BIN)/pytest -m "not e2e"

up: install
	$(BIN)/trivsel airflow up

down: install
	$(BIN)/trivsel airflow down
	$(BIN)/trivsel warehouse stop

lint: install
	$(BIN)/ruff check .

docs: install
	$(BIN)/trivsel dbt docs generate

bench: install
	$(BIN)/python -m trivsel.bench

clean:
	-$(BIN)/trivsel warehouse stop
	rm -rf .local dbt/target dbt/logs
