"""The production path for the benchmark: Airflow's LocalExecutor, as `make up` runs it, started by the bench.

`airflow dags test` runs every task instance one after the other in one process; production (`make up`,
`trivsel.local_airflow`) runs a scheduler whose LocalExecutor starts each task in a process of its own, side by
side up to `[core] parallelism`. Issue 15 measures that path, so the bench starts the api-server (the task
processes report to its Execution API), the scheduler and the dag-processor as its own children, with the
parallelism, the DAG's `max_active_tasks` and the default pool matched to the cores, triggers the period over
the REST API with the client tests/production uses (trivsel.airflow_api), and waits for the run's end. The
triggerer is not started: the DAG has no deferrable task.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
from pathlib import Path

from trivsel import airflow_env, settings
from trivsel.airflow_api import Api, ApiError
from trivsel.ports import free_port

COMPONENTS = ("api-server", "scheduler", "dag-processor")


def stack_env(cores: int, api_port: int) -> dict[str, str]:
    """local_airflow.env() (what `make up` runs with) with the parallelism matched to `cores` and free ports."""
    from trivsel import local_airflow

    os.environ["TRIVSEL_AIRFLOW_PORT"] = str(api_port)
    e = local_airflow.env()  # with its scheduling settings (local_airflow.scheduling_settings: one place)
    e.update({
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": str(cores),
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(cores),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(free_port()),
    })
    return e


class Stack:
    """api-server, scheduler and dag-processor as children of the bench, each in its own process group."""

    def __init__(self, cores: int | None = None, dag_id: str = airflow_env.DAG_ID,
                 env_overrides: dict[str, str] | None = None):
        """dag_id: the DAG to wait for, unpause and trigger (trivsel.bench.taskcost passes its no-op DAG);
        env_overrides: set on top of stack_env() (taskcost: its own dags folder and logs)."""
        self.cores = cores or os.cpu_count() or 1
        self.dag_id = dag_id
        self.env_overrides = dict(env_overrides or {})
        self.port = free_port()
        self.procs: dict[str, subprocess.Popen] = {}
        self.api = Api(f"http://127.0.0.1:{self.port}")
        self.logs = settings.home() / "bench" / "airflow"

    @property
    def scheduler_pid(self) -> int:
        return self.procs["scheduler"].pid

    def start(self, timeout: float = 300) -> None:
        from trivsel import dbt_manifest, local_airflow

        airflow_env.ensure_metadata_db()
        dbt_manifest.ensure()
        env = {**stack_env(self.cores, self.port), **self.env_overrides}
        airflow = airflow_env.airflow_bin()
        # the default pool's slots, like the parallelism, matched to the cores
        subprocess.run([airflow, "pools", "set", "default_pool", str(self.cores), "bench: one slot per core"],
                       env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.logs.mkdir(parents=True, exist_ok=True)
        for name in COMPONENTS:
            with (self.logs / f"{name}.log").open("ab") as log:
                self.procs[name] = subprocess.Popen(local_airflow.command(name), env=env, cwd=str(settings.ROOT),
                                                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                                    start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [n for n, p in self.procs.items() if p.poll() is not None]
            if dead:
                raise RuntimeError(f"airflow {dead} exited; logs in {self.logs}")
            try:
                self.api.login()
                dag = self.api.dag(self.dag_id)
                health = self.api.get("/api/v2/monitor/health")
                # the bench config has no schedule: wait for this dag-processor's parse (a DAG serialized by
                # an earlier `dags test` still shows the old schedule, and unpausing it would start a run)
                if (not dag.get("timetable_summary") and not dag.get("next_dagrun_run_after")
                        and (health.get("scheduler") or {}).get("status") == "healthy"):
                    self.api.patch(f"/api/v2/dags/{self.dag_id}", {"is_paused": False})
                    return
            except (ApiError, urllib.error.URLError, OSError, ValueError, KeyError):
                pass
            time.sleep(2)
        raise RuntimeError(f"airflow not ready after {timeout:.0f}s; logs in {self.logs}")

    def trigger(self, period: str | None = None, conf: dict | None = None) -> tuple[str, float]:
        """Trigger the period's run (or a run with `conf`); returns its run id and the epoch just before."""
        started = time.time()
        if conf is None:
            conf = {"period": period, "through": None, "municipality": None}
        run = self.api.login().trigger(self.dag_id, conf)
        return run["dag_run_id"], started

    def wait(self, run_id: str, timeout: float = 7200) -> dict:
        """The finished run's document, polled each second (a 401 of an expired token logs in again; a poll
        that times out on a busy api-server is asked again)."""
        return self.api.wait_for_run(self.dag_id, run_id, timeout, poll=1)

    def stop(self, timeout: float = 45) -> None:
        # the api-server last: task processes report to its Execution API while they shut down
        for name in reversed(COMPONENTS):
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
            except ProcessLookupError:
                pass
        self.procs.clear()


def task_log_files(run_id: str) -> list[Path]:
    """The run's task logs (the LocalExecutor's task processes write them under the base log folder)."""
    base = airflow_env.airflow_home() / "logs" / f"dag_id={airflow_env.DAG_ID}" / f"run_id={run_id}"
    return sorted(base.rglob("*.log")) if base.is_dir() else []
