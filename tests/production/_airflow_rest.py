"""A small client for Airflow 3's REST API (v2), as a data team would use it, for the production tests.

Token: with `simple_auth_manager_all_admins` (what `trivsel airflow up` configures) `GET /auth/token` hands
one out without a password. Everything else goes to /api/v2 with `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from trivsel import warehouse
from trivsel.integrity import DEFAULT_SCHEMAS

FINISHED = {"success", "failed"}
TRIVSEL = str(Path(sys.executable).with_name("trivsel"))
DAG_ID = "trivsel_monthly"
#: the one sample period the scheduler and Celery runs load (two payroll files); every model is rebuilt
SCHEDULER_PERIOD = "2014-03"
RUN_TIMEOUT = 1800


def trivsel(env: dict, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([TRIVSEL, *args], env=env, capture_output=True, text=True, timeout=timeout)


def _ports() -> tuple[int, int]:
    low, _, high = os.environ.get("TRIVSEL_TEST_AIRFLOW_PORTS", "28100-28199").partition("-")
    return int(low), int(high)


def free_port(low: int | None = None, high: int | None = None) -> int:
    """A free TCP port on 127.0.0.1: the first free one in [low, high) if given, else one the OS picks."""
    for p in range(low, high) if low and high else []:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                continue
            return p
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Api:
    base: str
    token: str = field(default="", repr=False)

    def _request(self, method: str, path: str, body: dict | None = None, timeout: float = 30) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{method} {path}: HTTP {exc.code}: {exc.read()[:2000]!r}") from exc

    def login(self) -> Api:
        self.token = self._request("GET", "/auth/token")["access_token"]
        return self

    def get(self, path: str, **query) -> dict:
        q = ("?" + urllib.parse.urlencode(query)) if query else ""
        return self._request("GET", path + q)

    def post(self, path: str, body: dict) -> dict:
        return self._request("POST", path, body)

    def patch(self, path: str, body: dict) -> dict:
        return self._request("PATCH", path, body)

    # --- what the tests do -----------------------------------------------------------------------------

    def wait_for_dag(self, dag_id: str, timeout: float = 300, unscheduled: bool = False) -> dict:
        """The DAG once the dag-processor has parsed it; fails with the import errors otherwise.

        unscheduled: also wait until the parsed DAG has no schedule (the `unscheduled_config` fixture). A DAG
        a `dags test` run serialized before is listed at once, with the schedule it was parsed with then;
        unpausing it before this `up`'s dag-processor re-parsed it would start a scheduled run.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dags = self.get("/api/v2/dags", limit=100)["dags"]
            for d in dags:
                if d["dag_id"] == dag_id and not (unscheduled and (d.get("timetable_summary")
                                                                   or d.get("next_dagrun_run_after"))):
                    return d
            time.sleep(2)
        errors = self.get("/api/v2/importErrors")["import_errors"]
        raise AssertionError(f"{dag_id} not parsed in {timeout:.0f}s; import errors:\n"
                             + "\n".join(e["stack_trace"][-2000:] for e in errors))

    def trigger(self, dag_id: str, conf: dict, logical_date: str | None) -> dict:
        return self.post(f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": logical_date, "conf": conf})

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        run: dict = {}
        while time.monotonic() < deadline:
            run = self.get(f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}")
            if run["state"] in FINISHED:
                return run
            time.sleep(5)
        raise AssertionError(f"run {run_id} not finished after {timeout:.0f}s: {run.get('state')}; "
                             f"tasks: {self.task_states(dag_id, run_id)}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        rid = urllib.parse.quote(run_id, safe="")
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns/{rid}/taskInstances", limit=1000)["task_instances"]

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        return {f"{t['task_id']}[{t.get('rendered_map_index') or t['map_index']}]": t["state"]
                for t in self.task_instances(dag_id, run_id)}

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1) -> str:
        """The task attempt's log as text (the lines' `event` fields), as the UI shows it."""
        rid = urllib.parse.quote(run_id, safe="")
        doc = self.get(f"/api/v2/dags/{dag_id}/dagRuns/{rid}/taskInstances/{task_id}/logs/{try_number}",
                       map_index=map_index, full_content="true")
        content = doc.get("content")
        if isinstance(content, str):
            return content
        return "\n".join(str(line.get("event", "")) if isinstance(line, dict) else str(line)
                         for line in content or [])


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
