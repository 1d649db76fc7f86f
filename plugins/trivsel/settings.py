"""Where things are and which environment variables steer them.

Every environment variable the code reads is listed in ENVIRONMENT, so the deployment files
(docker-compose.yml) can be checked against it by a test.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: Environment variables read by trivsel, with what they do.
ENVIRONMENT: dict[str, str] = {
    "TRIVSEL_HOME": "local state: embedded warehouse data, inbox, archive, logs (default: <repo>/.local)",
    "TRIVSEL_CONFIG": "path of municipalities.yml (default: <repo>/config/municipalities.yml)",
    "WAREHOUSE_URL": "libpq URL of an external PostgreSQL warehouse; unset = the embedded one",
    "TRIVSEL_PG_PORT": "port of the embedded PostgreSQL on 127.0.0.1 (default 55432)",
    "TRIVSEL_PSEUDONYM_KEY": "key for the keyed hash of employee identifiers (or Airflow connection "
    "trivsel_pseudonym_key)",
    "TRIVSEL_INBOX": "root of the municipal inboxes (default: $TRIVSEL_HOME/inbox)",
    "TRIVSEL_ARCHIVE": "root of the delivery archive (default: $TRIVSEL_HOME/archive)",
    "TRIVSEL_DBT_DIR": "the dbt project whose seeds the parsers read (default: <repo>/dbt)",
    "TRIVSEL_TASK_RETRIES": "retries of a monthly-DAG task (default 2)",
    "TRIVSEL_RETRY_DELAY_SECONDS": "first retry delay of a monthly-DAG task, doubling after (default 20)",
    "TRIVSEL_AIRFLOW_PORT": "port of the local Airflow API server and UI, `trivsel airflow up` (default 8080)",
    "TRIVSEL_AIRFLOW_HOST": "address the local API server listens on (default 127.0.0.1)",
    "TRIVSEL_WORKER_NAME": "name a Celery worker records as the host of its task instances "
    "(trivsel.airflow_env.worker_hostname; default: the machine's name)",
    "TRIVSEL_BULK_FROM_BYTES": "smallest file (bytes) a scheme with a set-based path loads set-based "
    "(default 65536; 0 = always, off = never)",
    "TRIVSEL_BI_PORT": "port of the local Superset, `trivsel bi up` / `make bi` (default 8088)",
    "TRIVSEL_BI_VENV": "Superset's own virtual environment (default: <repo>/.venv-bi)",
    "TRIVSEL_BI_URL": "an already running Superset to provision (docker-compose's superset service); unset = the "
    "local one",
    "TRIVSEL_BI_SUPERSET_ADMIN": "password of Superset's admin (default: generated into "
    ".local/secrets/bi/superset_admin.password)",
    "TRIVSEL_SUPERSET_METADATA_URL": "Superset's metadata database (set by trivsel.bi.server for Superset's "
    "processes; compose: the warehouse server's database `superset`)",
    "TRIVSEL_SUPERSET_SECRET_KEY": "Superset's session secret (set by trivsel.bi.server from "
    ".local/secrets/bi/superset_secret_key.password; compose: TRIVSEL_BI_SUPERSET_SECRET_KEY)",
    **{f"TRIVSEL_{r}_URL": f"libpq URL the {r.lower()} stage logs in with (optional; default: WAREHOUSE_URL's "
       f"server as user {r.lower()} with TRIVSEL_{r}_PASSWORD, or the embedded warehouse's generated password)"
       for r in ("LOADER", "TRANSFORMER", "PUBLISHER", "EVALUATOR")},
    **{f"TRIVSEL_{r}_PASSWORD": f"password of the warehouse role {r.lower()} on an external warehouse (set by "
       "`trivsel roles apply`, used by its stage; embedded: generated into .local/pg/"
       f"{r.lower()}.password)" for r in ("LOADER", "TRANSFORMER", "PUBLISHER", "EVALUATOR")},
}

#: Airflow connection ids the code looks up (before falling back to the environment).
AIRFLOW_CONNECTIONS: dict[str, str] = {
    "trivsel_warehouse": "the warehouse's bootstrap login: roles apply only (AIRFLOW_CONN_TRIVSEL_WAREHOUSE)",
    "trivsel_loader": "ingest's login as role loader (AIRFLOW_CONN_TRIVSEL_LOADER)",
    "trivsel_transformer": "dbt's login as role transformer: the Cosmos profile (AIRFLOW_CONN_TRIVSEL_TRANSFORMER)",
    "trivsel_publisher": "certification's login as role publisher (AIRFLOW_CONN_TRIVSEL_PUBLISHER)",
    "trivsel_evaluator": "report's and export's login as role evaluator (AIRFLOW_CONN_TRIVSEL_EVALUATOR)",
    "trivsel_pseudonym_key": "password field holds the pseudonymisation key (AIRFLOW_CONN_TRIVSEL_PSEUDONYM_KEY)",
}

SOURCES: tuple[str, ...] = ("survey", "hr_absence", "incidents", "use_of_force")


def home() -> Path:
    return Path(os.environ.get("TRIVSEL_HOME", ROOT / ".local")).resolve()


def config_path() -> Path:
    return Path(os.environ.get("TRIVSEL_CONFIG", ROOT / "config" / "municipalities.yml"))


def inbox_root() -> Path:
    return Path(os.environ.get("TRIVSEL_INBOX", home() / "inbox"))


def archive_root() -> Path:
    return Path(os.environ.get("TRIVSEL_ARCHIVE", home() / "archive"))


def dbt_dir() -> Path:
    return ROOT / "dbt"


#: The profile and target of dbt/profiles.yml, named on every dbt command line that parses (`trivsel dbt`,
#: the DAG's Cosmos tasks): dbt hashes `--profile`/`--target` as given into its partial-parse state, so the
#: CLI and the DAG write and read one state only when both pass them (docs/scaling.md, the sixth round).
DBT_PROFILE = "trivsel"
DBT_TARGET = "warehouse"


def expectations_dir() -> Path:
    return ROOT / "expectations"
