"""What the production tests share: Airflow's REST client (trivsel.airflow_api, the one the bench triggers
its runs with), the environment of a `trivsel airflow up` on free ports, and the emptying of built tables."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
from psycopg import sql

from trivsel import warehouse
from trivsel.airflow_api import Api
from trivsel.airflow_env import DAG_ID
from trivsel.integrity import DEFAULT_SCHEMAS
from trivsel.ports import free_port

# what the production tests import from here
__all__ = ["DAG_ID", "RUN_TIMEOUT", "SCHEDULER_PERIOD", "Api", "empty_built_tables", "free_port", "scheduler_env",
           "trivsel"]

TRIVSEL = str(Path(sys.executable).with_name("trivsel"))
#: the one sample period the scheduler and Celery runs load (two payroll files); every model is rebuilt
SCHEDULER_PERIOD = "2014-03"
RUN_TIMEOUT = 1800


def trivsel(env: dict, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([TRIVSEL, *args], env=env, capture_output=True, text=True, timeout=timeout)


def _ports() -> tuple[int, int]:
    low, _, high = os.environ.get("TRIVSEL_TEST_AIRFLOW_PORTS", "28100-28199").partition("-")
    return int(low), int(high)


def scheduler_env(config: Path, **extra: str) -> dict[str, str]:
    """The environment a `trivsel airflow up` of this session runs with (free API and log-server ports)."""
    low, high = _ports()
    api = free_port(low, high)
    env = dict(os.environ,
               TRIVSEL_AIRFLOW_PORT=str(api),
               TRIVSEL_CONFIG=str(config),
               AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(free_port()),
               AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=str(free_port()),
               AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT=str(free_port()))
    env.update(extra)
    return env


def empty_built_tables() -> int:
    """Truncate every base table in marts, reporting and person; returns how many had rows."""
    with psycopg.connect(warehouse.url(), autocommit=True) as conn:
        tables = conn.execute(
            """select n.nspname, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
                where n.nspname = any(%s) and c.relkind in ('r', 'p')""", (list(DEFAULT_SCHEMAS),)).fetchall()
        had_rows = 0
        for schema, table in tables:
            ident = sql.Identifier(schema, table)
            had_rows += conn.execute(sql.SQL("select exists (select from {})").format(ident)).fetchone()[0]
            conn.execute(sql.SQL("truncate {} cascade").format(ident))
    return had_rows
