"""docker-compose.yml cannot be started here, so it is checked against the code: services, executor, mounted
paths, the environment variables the code reads, and that no secret is written into the repository.

No Docker needed; runs in a second.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

import pytest
import yaml

from trivsel import settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict] = COMPOSE["services"]

AIRFLOW_SERVICES = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
    "airflow-worker": "celery worker",
}
AIRFLOW_ALL = [*AIRFLOW_SERVICES, "airflow-init"]
REPO_FOLDERS = ("dags", "plugins", "dbt", "expectations", "config")

#: ENVIRONMENT keys a deployment does not set, and why. Every other key must reach the Airflow services.
LOCAL_ONLY = {
    "TRIVSEL_PG_PORT": "port of the embedded PostgreSQL; the deployment has WAREHOUSE_URL",
    "TRIVSEL_AIRFLOW_PORT": "`trivsel airflow up` only; compose publishes AIRFLOW_UI_PORT",
    "TRIVSEL_AIRFLOW_HOST": "`trivsel airflow up` only",
    "TRIVSEL_WORKER_NAME": "tells two Celery workers on one machine apart (tests/production); a container's "
    "hostname already does",
    # Superset (trivsel.bi): the superset and bi-provision services set what they need, no Airflow service does
    "TRIVSEL_BI_PORT": "`trivsel bi up` only; compose publishes SUPERSET_PORT",
    "TRIVSEL_BI_VENV": "`trivsel bi up` only; compose runs Superset's own image",
    "TRIVSEL_BI_URL": "the bi-provision service only",
    "TRIVSEL_BI_SUPERSET_ADMIN": "the superset and bi-provision services only",
    "TRIVSEL_SUPERSET_METADATA_URL": "the superset service only (Superset's own process)",
    "TRIVSEL_SUPERSET_SECRET_KEY": "the superset service only (Superset's own process)",
}
#: Names outside trivsel's own that the code may read: Airflow's (it tells whether we run inside Airflow).
THIRD_PARTY_READS = {"AIRFLOW_HOME"}

SECRET_NAME = re.compile(r"PASSWORD|SECRET|FERNET|JWT|TOKEN|PSEUDONYM_KEY", re.I)
REQUIRED_VAR = re.compile(r"\$\{([A-Z0-9_]+):\?[^}]*\}")
ANY_VAR = re.compile(r"\$\{([A-Z0-9_]+)(?::?[-?+][^}]*)?\}")
URL_PASSWORD = re.compile(r"://[^:/@\s]*:([^@\s]+)@")


def environment(service: str) -> dict[str, str]:
    env = SERVICES[service].get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def bind_mounts(service: str) -> dict[str, PurePosixPath]:
    """Repository path (relative, as in the file) -> container path, for the service's bind mounts."""
    mounts = {}
    for volume in SERVICES[service].get("volumes") or []:
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            mounts[str(PurePosixPath(source))] = PurePosixPath(target)
    return mounts


def container_root(service: str) -> PurePosixPath:
    """Where the repository's layout starts in the container: the parent of the mounted plugins/."""
    return bind_mounts(service)["plugins"].parent


def dotenv_example() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


# --- services ----------------------------------------------------------------------------------------------

def test_required_services_present():
    missing = {*AIRFLOW_ALL, "redis", "airflow-db", "warehouse-db"} - set(SERVICES)
    assert not missing, f"docker-compose.yml lacks services {sorted(missing)}"


@pytest.mark.parametrize("service,command", sorted(AIRFLOW_SERVICES.items()))
def test_airflow_service_runs_its_component(service, command):
    cmd = SERVICES[service]["command"]
    assert (cmd if isinstance(cmd, str) else " ".join(cmd)) == command


@pytest.mark.parametrize("service", AIRFLOW_ALL)
def test_celery_executor_with_redis_and_own_metadata_db(service):
    env = environment(service)
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:")
    assert "@airflow-db:" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert "@airflow-db:" in env["AIRFLOW__CELERY__RESULT_BACKEND"]
    # workers and the scheduler's task supervisors report to the API server's Execution API
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].startswith("http://airflow-apiserver:8080/")


def test_warehouse_is_a_separate_postgresql():
    assert SERVICES["warehouse-db"]["image"].startswith("postgres:")
    assert SERVICES["airflow-db"]["image"].startswith("postgres:")
    assert environment("warehouse-db")["POSTGRES_DB"] == "warehouse"
    example = dotenv_example()["WAREHOUSE_URL"]
    assert "@warehouse-db:" in example and example.endswith("/warehouse")


def test_api_server_healthcheck_uses_the_health_endpoint():
    test = " ".join(SERVICES["airflow-apiserver"]["healthcheck"]["test"])
    assert "/api/v2/monitor/health" in test


def test_services_wait_for_init_and_databases():
    for service in AIRFLOW_SERVICES:
        deps = SERVICES[service]["depends_on"]
        assert deps["airflow-init"]["condition"] == "service_completed_successfully"
        assert {"redis", "airflow-db", "warehouse-db"} <= set(deps)


# --- mounted paths ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("service", AIRFLOW_ALL)
def test_repository_folders_mounted_in_the_layout_the_code_expects(service):
    mounts = bind_mounts(service)
    assert set(REPO_FOLDERS) <= set(mounts), f"{service} mounts {sorted(mounts)}"
    root = container_root(service)
    for source, target in mounts.items():
        assert (ROOT / source).is_dir(), f"{service} mounts ./{source}, which is not in the repository"
        assert target == root / source, f"{service}: ./{source} must sit at {root / source}, not {target}"
    # trivsel.settings.ROOT is two levels above plugins/trivsel/settings.py; dbt, expectations and config
    # are found relative to it, and the DAG finds the dbt project relative to dags/.
    for path in (settings.dbt_dir(), settings.expectations_dir(), settings.config_path()):
        assert path.resolve().relative_to(settings.ROOT).parts[0] in mounts
    env = environment(service)
    assert PurePosixPath(env["AIRFLOW__CORE__DAGS_FOLDER"]) == mounts["dags"]
    assert PurePosixPath(env["AIRFLOW__CORE__PLUGINS_FOLDER"]) == mounts["plugins"]


@pytest.mark.parametrize("var", ["TRIVSEL_CONFIG", "TRIVSEL_DBT_DIR"])
def test_paths_in_the_environment_exist_in_the_mounted_repository(var):
    for service in AIRFLOW_ALL:
        path = PurePosixPath(environment(service)[var])
        relative = path.relative_to(container_root(service))
        assert relative.parts[0] in bind_mounts(service), f"{var}={path} is not under a mounted folder"
        assert (ROOT / relative).exists(), f"{var}={path}: {relative} is not in the repository"


def test_state_volumes_are_shared_by_every_worker():
    env = environment("airflow-worker")
    targets = {v.split(":")[1] for v in SERVICES["airflow-worker"]["volumes"] if not v.startswith(".")}
    for var in ("TRIVSEL_INBOX", "TRIVSEL_ARCHIVE"):
        assert env[var] in targets, f"{var} must be a named volume (shared), not the container's own disk"


def test_dockerfile_matches_the_lock_and_lays_out_the_repository():
    dockerfile = (ROOT / "Dockerfile").read_text()
    lock = (ROOT / "requirements.lock").read_text()
    airflow_version = re.search(r"^apache-airflow==(\S+)$", lock, re.M).group(1)
    assert re.search(rf"^FROM apache/airflow:{re.escape(airflow_version)}-python3\.11\b", dockerfile, re.M)
    assert "requirements.lock" in dockerfile and "pip install --no-deps --editable /opt/trivsel" in dockerfile
    root = container_root("airflow-scheduler")
    for folder in REPO_FOLDERS:
        assert f"COPY --chown=airflow:0 {folder} {root / folder}" in dockerfile
    assert ".env" in (ROOT / ".dockerignore").read_text().split()


# --- environment variables ----------------------------------------------------------------------------------

def test_local_only_list_is_not_stale():
    assert set(LOCAL_ONLY) <= set(settings.ENVIRONMENT)


@pytest.mark.parametrize("service", AIRFLOW_ALL)
def test_every_variable_the_code_reads_reaches_the_airflow_services(service):
    env = environment(service)
    needed = set(settings.ENVIRONMENT) - set(LOCAL_ONLY)
    missing = sorted(needed - set(env))
    assert not missing, f"{service} lacks {missing} (add them, or to LOCAL_ONLY with a reason)"
    conns = sorted(f"AIRFLOW_CONN_{c.upper()}" for c in settings.AIRFLOW_CONNECTIONS)
    assert not [c for c in conns if c not in env], f"{service} lacks connections {conns}"


def _env_reads() -> dict[str, set[str]]:
    """Names the package and the DAGs read from the environment, by file. f-string names end at the brace.

    `os.environ.setdefault(...)` is not a read: the code gives a library a default.
    """
    q = r"""(f?)(["'])(.*?)\2"""
    patterns = [
        re.compile(r"\benviron\.(?:get|pop)\(\s*" + q),
        re.compile(r"\benviron\.(?:get|pop)\(\s*()()([A-Za-z_][A-Za-z0-9_]*)\s*[,)]"),  # a constant's name
        re.compile(r"\bgetenv\(\s*()()([A-Za-z_][A-Za-z0-9_]*)\s*[,)]"),
        re.compile(r"\benviron\[\s*" + q + r"\s*\](?!\s*=[^=])"),
        re.compile(r"\bgetenv\(\s*" + q),
        re.compile(r"""(["'])([A-Za-z0-9_]+)\1\s+(?:not\s+)?in\s+(?:os\.)?environ\b"""),
    ]
    found: dict[str, set[str]] = {}
    files = [*(ROOT / "plugins" / "trivsel").rglob("*.py"), *(ROOT / "dags").glob("*.py")]
    for path in files:
        text = path.read_text()
        constants = dict(re.findall(r"""^([A-Z_][A-Z0-9_]*)\s*=\s*["']([A-Za-z0-9_]+)["']""", text, re.M))
        for pattern in patterns:
            for m in pattern.finditer(text):
                if pattern.groups == 2:
                    name = m.group(2)
                elif not m.group(2):  # environ.get(SOME_CONSTANT): its value, or the unresolved name flagged
                    name = constants.get(m.group(3), f"<unresolved {m.group(3)}>")
                else:
                    name = m.group(3)
                    name = name.split("{")[0] + "*" if m.group(1) and "{" in name else name
                found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_environment_read_in_the_code_is_listed_in_settings():
    reads = _env_reads()
    assert {"WAREHOUSE_URL", "TRIVSEL_HOME", "TRIVSEL_PSEUDONYM_KEY"} <= set(reads), "the scan finds nothing"
    conn_vars = {f"AIRFLOW_CONN_{c.upper()}" for c in settings.AIRFLOW_CONNECTIONS}
    unlisted = {}
    for name, files in reads.items():
        if name in settings.ENVIRONMENT or name in THIRD_PARTY_READS or name.startswith("AIRFLOW__"):
            continue
        if name.startswith("AIRFLOW_CONN_") and (name in conn_vars or name == "AIRFLOW_CONN_*"):
            continue  # an Airflow connection: listed in settings.AIRFLOW_CONNECTIONS
        unlisted[name] = sorted(files)
    assert not unlisted, f"add these to trivsel.settings.ENVIRONMENT (and docker-compose.yml): {unlisted}"


# --- secrets ----------------------------------------------------------------------------------------------

def _strings(node):
    if isinstance(node, dict):
        for v in node.values():
            yield from _strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v)
    elif isinstance(node, str):
        yield node


COMPOSE_TEXT = "\n".join(_strings(COMPOSE))  # every value in the file, comments left out


def _all_environment_values():
    for service in SERVICES:
        for key, value in environment(service).items():
            yield service, key, value


def test_no_literal_secrets_in_compose():
    for service, key, value in _all_environment_values():
        for password in URL_PASSWORD.findall(value):
            assert REQUIRED_VAR.fullmatch(password), f"{service}.{key}: a URL carries a literal password"
        if SECRET_NAME.search(key) or key.startswith("AIRFLOW_CONN_"):
            assert REQUIRED_VAR.search(value), f"{service}.{key} must come from ${{VAR:?}} (.env), not the file"
            residue = REQUIRED_VAR.sub("", value)
            assert not re.search(r"[A-Za-z0-9+/=_-]{16,}", residue), f"{service}.{key}: literal secret?"
    # a secret never has a default in the file
    for m in ANY_VAR.finditer(COMPOSE_TEXT):
        if SECRET_NAME.search(m.group(1)) or m.group(1) == "WAREHOUSE_URL":
            assert REQUIRED_VAR.fullmatch(m.group(0)), f"{m.group(0)}: a secret needs ${{VAR:?message}}"


def test_env_example_defines_every_required_variable_with_placeholders_only():
    example = dotenv_example()
    required = set(REQUIRED_VAR.findall(COMPOSE_TEXT))
    assert required <= set(example), f".env.example lacks {sorted(required - set(example))}"
    for key, value in example.items():
        if SECRET_NAME.search(key):
            assert value == "change-me", f".env.example {key} must be the placeholder 'change-me'"
        for password in URL_PASSWORD.findall(value):
            assert password == "change-me", f".env.example {key}: the URL's password must be 'change-me'"
