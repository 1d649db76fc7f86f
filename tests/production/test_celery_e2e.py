"""The scale-out path the README promises, exercised for real: the CeleryExecutor on a real Redis broker
(Debian's redis-server, from `make test-deps`), two `airflow celery worker` processes, the metadata database
and Celery's results in PostgreSQL (the embedded server's `airflow` database), no Docker.

One sample period (SCHEDULER_PERIOD) proves it: three mapped ingests and every dbt model, spread over both
workers; marts, reporting and person must equal the session's `airflow dags test` run (emptied first, so
only a complete rebuild gives them back). Everything started here runs in its own process group and is
stopped even when the test fails.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import psycopg
import pytest
from _airflow_rest import (
    DAG_ID,
    RUN_TIMEOUT,
    SCHEDULER_PERIOD,
    Api,
    empty_built_tables,
    free_port,
    scheduler_env,
    trivsel,
)

from trivsel import airflow_env, local_airflow, warehouse
from trivsel.integrity import differences, table_fingerprints

WORKERS = ("celery-1", "celery-2")


@contextmanager
def process_group(cmd: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """A background process in its own session; SIGTERM to its group on exit, SIGKILL after 30 s."""
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        yield proc
    finally:
        for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 5)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue


def _redis_ready(port: int, timeout: float = 20) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"redis-server did not answer PING on 127.0.0.1:{port}")


def _worker_env(base: dict[str, str], name: str, monkeypatch) -> dict[str, str]:
    """What `trivsel airflow up` gives its processes (local_airflow.env()), for one named worker."""
    with monkeypatch.context() as m:
        for k, v in base.items():
            m.setenv(k, v)
        e = local_airflow.env()
    e.update(TRIVSEL_WORKER_NAME=name,
             AIRFLOW__CORE__HOSTNAME_CALLABLE="trivsel.airflow_env.worker_hostname",
             AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(free_port()))
    return e


@pytest.fixture(scope="session")
def redis() -> str:
    """redis-server and the Celery provider, checked before the session's demo run is paid for."""
    path = shutil.which("redis-server")
    if not path:
        pytest.fail("redis-server is not installed: run `make test-deps` (installs Debian's redis-server)")
    try:
        import airflow.providers.celery  # noqa: F401
    except ImportError:
        pytest.fail("the Celery provider is not installed: apache-airflow-providers-celery belongs in "
                    "requirements.lock (then `make install`)")
    return path


@pytest.mark.e2e
def test_celery_executor_two_workers_redis_same_fingerprints(redis, demo_run, unscheduled_config, keep_built_tables, tmp_path,
                                                             monkeypatch):
    assert set(demo_run.values()) == {0}, f"the session's demo run (airflow dags test) failed: {demo_run}"
    with psycopg.connect(warehouse.url()) as conn:
        by_dags_test = table_fingerprints(conn)
    assert empty_built_tables() > 0

    redis_port = free_port()
    (tmp_path / "redis").mkdir()
    broker = f"redis://127.0.0.1:{redis_port}/0"
    with monkeypatch.context() as m:
        for k, v in scheduler_env(unscheduled_config).items():
            m.setenv(k, v)
        env = airflow_env.celery_env(broker, concurrency=2)
    workers = {name: _worker_env(env, name, monkeypatch) for name in WORKERS}
    for name, worker_env in workers.items():
        missing = set(airflow_env.CELERY_SETTINGS) - set(worker_env)
        assert not missing, f"{name} lacks {missing}"

    with ExitStack() as stack:
        stack.enter_context(process_group(
            [redis, "--port", str(redis_port), "--bind", "127.0.0.1", "--dir", str(tmp_path / "redis"),
             "--save", "", "--appendonly", "no", "--daemonize", "no"], env, tmp_path / "redis.log"))
        _redis_ready(redis_port)
        stack.callback(lambda: trivsel(env, "airflow", "down", timeout=240))
        up = trivsel(env, "airflow", "up")
        assert up.returncode == 0, f"trivsel airflow up (CeleryExecutor) failed:\n{up.stdout}\n{up.stderr}"
        for name in WORKERS:
            stack.enter_context(process_group(
                [airflow_env.airflow_bin(), *airflow_env.CELERY_WORKER_COMMAND, "--concurrency", "2",
                 "--celery-hostname", f"{name}@%h"],
                workers[name], tmp_path / f"{name}.log"))

        api = Api(f"http://127.0.0.1:{env['TRIVSEL_AIRFLOW_PORT']}").login()
        api.wait_for_dag(DAG_ID, unscheduled=True)
        api.patch(f"/api/v2/dags/{DAG_ID}", {"is_paused": False})
        started = time.monotonic()
        run_id = api.trigger(DAG_ID, {"period": SCHEDULER_PERIOD}, logical_date=None)["dag_run_id"]
        run = api.wait_for_run(DAG_ID, run_id, RUN_TIMEOUT)
        tis = api.task_instances(DAG_ID, run_id)
        logs = "\n".join(f"--- {p.name}\n" + p.read_text(errors="replace")[-3000:] for p in tmp_path.glob("*.log"))
        assert run["state"] == "success", f"{run['state']}: {api.task_states(DAG_ID, run_id)}\n{logs}"
        print(f"celery run of {SCHEDULER_PERIOD}: {time.monotonic() - started:.0f}s, {len(tis)} task instances")
        hosts = {t["hostname"] for t in tis if t["state"] == "success"}
        assert hosts == set(WORKERS), f"tasks ran on {hosts}, expected both workers {WORKERS}"
        plan = next(t for t in tis if t["task_id"] == "plan")
        assert f"run {run_id}: periods {SCHEDULER_PERIOD}" in api.task_log(DAG_ID, run_id, "plan", plan["try_number"])

    with psycopg.connect(warehouse.url()) as conn:
        assert differences(by_dags_test, table_fingerprints(conn)) == []
