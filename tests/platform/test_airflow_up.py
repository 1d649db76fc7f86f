"""`trivsel airflow up` starts Airflow locally; its API server answers the health endpoint; `down` stops it.

Runs against the session's test warehouse (its own TRIVSEL_HOME and TRIVSEL_PG_PORT, see tests/conftest.py)
on free ports, so it does not collide with a `make up` on the same machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from throwaway_db import free_port

TRIVSEL = str(Path(sys.executable).with_name("trivsel"))
DAG_ID = "trivsel_monthly"


def _get(url: str, token: str | None = None, timeout: float = 10) -> dict:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def _trivsel(env: dict, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([TRIVSEL, *args], env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.e2e
def test_airflow_up_health_dag_listed_and_down(warehouse_url, test_home):
    port = free_port()
    env = dict(os.environ, TRIVSEL_AIRFLOW_PORT=str(port),
               AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(free_port()),
               AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=str(free_port()))
    base = f"http://127.0.0.1:{port}"
    try:
        up = _trivsel(env, "airflow", "up")
        assert up.returncode == 0, f"trivsel airflow up failed:\n{up.stdout}\n{up.stderr}"
        assert f"localhost:{port}" in up.stdout  # it says where the UI is

        health = _get(f"{base}/api/v2/monitor/health")
        assert health["metadatabase"]["status"] == "healthy"
        assert health["scheduler"]["status"] == "healthy"

        status = _trivsel(env, "airflow", "status", timeout=60)
        assert status.returncode == 0, status.stdout
        lines = {line.split()[0]: line for line in status.stdout.splitlines() if line.strip()}
        for name in ("api-server", "scheduler", "dag-processor", "triggerer"):
            assert "running (pid" in lines[name], status.stdout

        # The UI is served without a login (simple auth manager, all admins) ...
        with urllib.request.urlopen(f"{base}/", timeout=10) as r:
            assert r.status == 200 and "<title>Airflow</title>" in r.read().decode()
        # ... and a token comes the documented way for simple_auth_manager_all_admins: GET /auth/token.
        token = _get(f"{base}/auth/token")["access_token"]

        # The dag-processor parses the DAG (Cosmos runs `dbt ls`), then the REST API lists it.
        deadline = time.monotonic() + 150
        dag_ids: list[str] = []
        while time.monotonic() < deadline:
            dag_ids = [d["dag_id"] for d in _get(f"{base}/api/v2/dags?limit=100", token)["dags"]]
            if DAG_ID in dag_ids:
                break
            time.sleep(2)
        if DAG_ID not in dag_ids:
            errors = _get(f"{base}/api/v2/importErrors", token)["import_errors"]
            pytest.fail(f"{DAG_ID} not listed by the REST API (listed: {dag_ids}); import errors:\n"
                        + "\n".join(e["stack_trace"][-2000:] for e in errors))
        dag = _get(f"{base}/api/v2/dags/{DAG_ID}", token)
        assert dag["dag_id"] == DAG_ID
    finally:
        down = _trivsel(env, "airflow", "down", timeout=180)
    assert down.returncode == 0, down.stdout + down.stderr
    with pytest.raises((urllib.error.URLError, OSError)):
        _get(f"{base}/api/v2/monitor/health", timeout=3)
    status = _trivsel(env, "airflow", "status", timeout=60)
    assert status.returncode == 3 and "running" not in status.stdout
    assert not list((test_home / "airflow" / "services").glob("*.pid"))
