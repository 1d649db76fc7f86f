"""docker-compose.yml runs the Celery configuration test_celery_e2e.py proves locally: the same settings by
name, the same kind of broker and result backend, the same worker command. No Docker; a second."""

from __future__ import annotations

from pathlib import Path

import yaml

from trivsel import airflow_env, settings

COMPOSE = yaml.safe_load((settings.ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
AIRFLOW = [name for name in SERVICES if name.startswith("airflow-") and name != "airflow-db"]


def _env(service: str) -> dict[str, str]:
    return {k: str(v) for k, v in (SERVICES[service].get("environment") or {}).items()}


def _local(monkeypatch, tmp_path: Path) -> dict[str, str]:
    monkeypatch.setenv("TRIVSEL_HOME", str(tmp_path))
    monkeypatch.setenv("WAREHOUSE_URL", "postgresql://u:p@db.example:5432/warehouse")
    monkeypatch.setenv("TRIVSEL_PSEUDONYM_KEY", "k" * 40)
    return airflow_env.celery_env("redis://127.0.0.1:6390/0")


def test_every_celery_setting_reaches_every_airflow_service(monkeypatch, tmp_path):
    local = _local(monkeypatch, tmp_path)
    for service in AIRFLOW:
        env = _env(service)
        missing = [k for k in airflow_env.CELERY_SETTINGS if k not in env]
        assert not missing, f"{service} lacks {missing}"
        assert env["AIRFLOW__CORE__EXECUTOR"] == local["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"


def test_broker_and_result_backend_are_the_same_kind(monkeypatch, tmp_path):
    local = _local(monkeypatch, tmp_path)
    compose = _env("airflow-worker")
    assert local["AIRFLOW__CELERY__BROKER_URL"].split("://")[0] == compose["AIRFLOW__CELERY__BROKER_URL"].split("://")[0] \
        == "redis"
    host = compose["AIRFLOW__CELERY__BROKER_URL"].split("://")[1].split(":")[0]
    assert host in SERVICES and "redis" in SERVICES[host]["image"]
    # results go to the metadata database, PostgreSQL, in both
    for env in (local, compose):
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql")
    assert local["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+" + local["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert compose["AIRFLOW__CELERY__RESULT_BACKEND"].split("@")[1] == \
        compose["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].split("@")[1]


def test_worker_runs_the_command_the_test_runs_and_waits_for_its_broker():
    worker = SERVICES["airflow-worker"]
    assert worker["command"].split() == list(airflow_env.CELERY_WORKER_COMMAND)
    assert "redis" in worker["depends_on"]


def test_the_celery_executor_loads_with_the_locked_celery():
    """The scheduler loads the executor by this import: celery 5.7 broke it (celery.backends.database.retry)."""
    import importlib

    from airflow.executors.executor_loader import ExecutorLoader

    module, name = ExecutorLoader.executors["CeleryExecutor"].rsplit(".", 1)  # what "CeleryExecutor" names
    executor = getattr(importlib.import_module(module), name)
    assert executor.__name__ == "CeleryExecutor"
