# trivsel: everything a fresh machine with Python 3.11 needs, from the lock file.
#   make demo   set up, generate the sample deliveries, run the monthly DAG for every sample period
#   make test   set up and run the tests
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install manifest demo test test-fast test-deps up down status lint docs bench bi bi-down test-bi clean

$(STAMP): requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip==26.3"
	$(BIN)/pip install --quiet --requirement requirements.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation --editable .
	@touch $(STAMP)

install: $(STAMP)

# The dbt manifest the monthly DAG's dbt tasks and Assets are read from (`dbt parse`; rebuilt only when a file
# under dbt/ changed): parsing the DAG never runs dbt. `trivsel run`/`demo`/`airflow up` also build it.
manifest: install
	$(BIN)/trivsel manifest

demo: install manifest
	$(BIN)/trivsel demo

# System packages the tests run real servers from (tests/remote: OpenSSH's sshd; tests/production: Redis).
# Skipped when present.
test-deps:
	@test -x /usr/sbin/sshd || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq openssh-server; }
	@# tests/certified: the evaluation report is rendered in Debian's headless chromium
	@command -v chromium >/dev/null || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; }
	@# tests/production: the CeleryExecutor's broker is Debian's redis-server, started by the test itself
	@command -v redis-server >/dev/null || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq redis-server; }

test: install test-deps manifest
	$(BIN)/pytest

test-fast: install test-deps manifest
	$(BIN)/pytest -m "not e2e"

up: install manifest
	$(BIN)/trivsel airflow up

down: install
	$(BIN)/trivsel airflow down
	$(BIN)/trivsel warehouse stop

# Apache Superset on the marts (trivsel.bi): its own venv .venv-bi from requirements-bi.lock (Superset pins
# SQLAlchemy 1.4, Airflow needs 2.x; created once), metadata database `superset` in the warehouse's server,
# connections, datasets and one dashboard per domain provisioned over its REST API; prints the URL and where
# the generated passwords are. `make bi-down` stops it with all its children.
bi: install manifest
	$(BIN)/trivsel bi up

bi-down: install
	$(BIN)/trivsel bi down

# Only the Superset tests (tests/bi, marker `bi`): make test includes them.
test-bi: install test-deps manifest
	$(BIN)/pytest -m bi

lint: install
	$(BIN)/ruff check .

# dbt docs (dbt/target/index.html, incl. the exposures) and Great Expectations Data Docs of the raw and
# certified suites, validated against the current warehouse ($(TRIVSEL_HOME)/gx/.../data_docs/local_site).
docs: install
	$(BIN)/trivsel dbt docs generate
	$(BIN)/trivsel docs

# issue 15's targets in one table (docs/scaling.md): the national month under the LocalExecutor, the floor, the
# naive peer at scale 1; months 1, 13 and 121 again at scale 0.1 on top of preloaded history (a scale-1 month
# 121's history takes over an hour on 2 cores: docs/scaling.md). Growth per doubling: BENCH_ARGS="--scales 1 2 4".
BENCH_ARGS ?= --scales 1 --months 12 120 --history-scale 0.1
bench: install
	$(BIN)/python -m trivsel.bench $(BENCH_ARGS)

clean:
	-$(BIN)/trivsel warehouse stop
	rm -rf .local dbt/target dbt/logs
