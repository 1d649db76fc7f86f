"""The environment Airflow runs in locally (no Docker): its home, metadata database and connections.

The metadata database is the `airflow` database in the same PostgreSQL server as the warehouse.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from trivsel import settings, warehouse
from trivsel.keys import KEY_ENV, ensure_local_key

DAG_ID = "trivsel_monthly"


def airflow_home() -> Path:
    return settings.home() / "airflow"


def env() -> dict[str, str]:
    """Variables for an Airflow process: inherits the caller's and adds what is not already set."""
    e = dict(os.environ)
    home = airflow_home()
    home.mkdir(parents=True, exist_ok=True)
    defaults = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(settings.ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(settings.ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "8",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": warehouse.airflow_sqlalchemy_url(),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__API__PORT": "8080",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        # Airflow's default DAG import timeout (30 s) suffices: the dbt tasks' Assets are read from a prebuilt
        # manifest (trivsel.dag_factory), the DAG parse runs no dbt.
        # Task logs: written by the scheduler's task processes, by trivsel.dags_test_logs after a `dags test`
        # run, and read by the api-server; all three take the folder from here.
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        # Cosmos' dbt ls and partial-parse cache, per installation (not a shared /tmp/cosmos)
        "AIRFLOW__COSMOS__CACHE_DIR": str(settings.home() / "cosmos"),
        # the bootstrap login (roles apply in the plan step); every stage has its own connection below
        "AIRFLOW_CONN_TRIVSEL_WAREHOUSE": warehouse.url(),
        **stage_connections(),
        "TRIVSEL_HOME": str(settings.home()),
        "PYTHONPATH": os.pathsep.join(p for p in [str(settings.ROOT / "plugins"), e.get("PYTHONPATH")] if p),
        "NO_PROXY": "*",
        "SCARF_ANALYTICS": "false",
        "DO_NOT_TRACK": "1",
        "GX_ANALYTICS_ENABLED": "false",
    }
    venv_bin = str(Path(sys.executable).parent)
    if venv_bin not in e.get("PATH", "").split(os.pathsep):
        e["PATH"] = os.pathsep.join([venv_bin, e.get("PATH", "")])
    for k, v in defaults.items():
        e.setdefault(k, v)
    if KEY_ENV not in e and not warehouse.is_external():
        e[KEY_ENV] = ensure_local_key()  # the demo's local key; production sets its own
    return e


def stage_connections() -> dict[str, str]:
    """AIRFLOW_CONN_TRIVSEL_<ROLE> for each stage role (trivsel_loader, trivsel_transformer, trivsel_publisher,
    trivsel_evaluator): the Cosmos profile uses trivsel_transformer. In the embedded warehouse each logs in
    with the role's generated password; an external one with TRIVSEL_<ROLE>_URL/_PASSWORD (docs/roles.md)."""
    return {f"AIRFLOW_CONN_TRIVSEL_{role.upper()}": warehouse.url(role=role) for role in warehouse.STAGE_ROLES}


def airflow_bin() -> str:
    return str(Path(sys.executable).with_name("airflow"))


def ensure_metadata_db() -> None:
    """Migrate Airflow's metadata database once per Airflow version."""
    import airflow

    marker = airflow_home() / f".migrated-{airflow.__version__}"
    if marker.exists():
        return
    subprocess.run([airflow_bin(), "db", "migrate"], env=env(), check=True, stdout=subprocess.DEVNULL)
    marker.write_text("ok\n")


#: The CeleryExecutor's settings, by name: docker-compose.yml sets these for every Airflow service, and
#: tests/production/test_celery_e2e.py runs a local Redis and two workers with the same names.
CELERY_SETTINGS: tuple[str, ...] = (
    "AIRFLOW__CORE__EXECUTOR",
    "AIRFLOW__CELERY__BROKER_URL",
    "AIRFLOW__CELERY__RESULT_BACKEND",
    "AIRFLOW__CELERY__WORKER_CONCURRENCY",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
)
CELERY_WORKER_COMMAND: tuple[str, ...] = ("celery", "worker")


def celery_env(broker_url: str, concurrency: int = 4) -> dict[str, str]:
    """The CeleryExecutor on top of env(): Redis as broker, results in the metadata database (PostgreSQL)."""
    e = env()
    metadata = e["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    e.update({
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + metadata,
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(concurrency),
    })
    return e


def worker_hostname() -> str:
    """`[core] hostname_callable` of a Celery worker: its name (TRIVSEL_WORKER_NAME), else the machine's.

    Two workers on one machine would otherwise record the same host on every task instance, and nobody could
    tell which worker ran what.
    """
    import socket

    return os.environ.get("TRIVSEL_WORKER_NAME") or socket.getfqdn()
