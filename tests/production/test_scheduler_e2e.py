"""The scheduler path is the tested path: Airflow started as `make up` starts it (LocalExecutor, parallelism
above 1), a period triggered over the REST API, its task log read over the API, and marts, reporting and
person tables identical to what `airflow dags test` built (the session's demo run).

How the comparison can fail: every table of marts, reporting and person is emptied before the trigger, so
only a run that rebuilds all of them, the same way, gives the demo's fingerprints back.

Smallest set that proves it: one period (SCHEDULER_PERIOD, two payroll files), on the demo's warehouse. The
run rebuilds every model (54 task instances). Measured on the shared 2-core machine: `up` and the first parse
27 s, the run 251 s from trigger to success (the session's demo run under `dags test`: 235 s); under heavy load
from other sessions both took about 5x as long.
"""

from __future__ import annotations

import time
from datetime import datetime

import psycopg
import pytest
from _airflow_rest import (
    DAG_ID,
    RUN_TIMEOUT,
    SCHEDULER_PERIOD,
    Api,
    empty_built_tables,
    scheduler_env,
    trivsel,
)

from trivsel import local_airflow, warehouse
from trivsel.integrity import differences, table_fingerprints


def _overlapping(tis: list[dict]) -> list[tuple[str, str]]:
    """Pairs of task instances that ran at the same time (proof that the executor ran tasks in parallel)."""
    spans = sorted((datetime.fromisoformat(t["start_date"]), datetime.fromisoformat(t["end_date"]),
                    f"{t['task_id']}[{t['map_index']}]") for t in tis if t.get("start_date") and t.get("end_date"))
    return [(a[2], b[2]) for i, a in enumerate(spans) for b in spans[i + 1:] if b[0] < a[1]]


@pytest.fixture(scope="module")
def airflow_up(demo_run, unscheduled_config):
    """`trivsel airflow up` on the session's home, after the demo run (airflow dags test) built the warehouse."""
    assert set(demo_run.values()) == {0}, f"the session's demo run (airflow dags test) failed: {demo_run}"
    env = scheduler_env(unscheduled_config)
    started = time.monotonic()
    try:
        up = trivsel(env, "airflow", "up")
        assert up.returncode == 0, f"trivsel airflow up failed:\n{up.stdout}\n{up.stderr}"
        api = Api(f"http://127.0.0.1:{env['TRIVSEL_AIRFLOW_PORT']}").login()
        api.wait_for_dag(DAG_ID, unscheduled=True)
        print(f"airflow up and {DAG_ID} parsed in {time.monotonic() - started:.0f}s")
        yield env, api
    finally:
        down = trivsel(env, "airflow", "down", timeout=240)
        assert down.returncode == 0, down.stdout + down.stderr


@pytest.mark.e2e
def test_demo_runs_show_their_task_logs_and_real_durations(airflow_up, demo_run):
    """The demo ran with `airflow dags test`; `make up` on its home shows that run, its logs, its duration."""
    _, api = airflow_up
    runs = api.get(f"/api/v2/dags/{DAG_ID}/dagRuns", limit=100)["dag_runs"]
    first = min(demo_run)
    demo = [r for r in runs if (r.get("conf") or {}).get("period") == first]
    assert demo, f"the demo's run of {first} is not listed: {[r['dag_run_id'] for r in runs]}"
    run = demo[-1]
    duration = datetime.fromisoformat(run["end_date"]) - datetime.fromisoformat(run["start_date"])
    assert 0 < duration.total_seconds() < 86400, f"demo run {run['dag_run_id']} lasted {duration}"
    run_id = run["dag_run_id"]
    tis = api.task_instances(DAG_ID, run_id)
    plan = next(t for t in tis if t["task_id"] == "plan")
    text = api.task_log(DAG_ID, run_id, "plan", plan["try_number"])
    assert "Log file not found" not in text, text[-2000:]
    assert f"run {run_id}: periods {first}" in text, text[-3000:]
    ingest = next(t for t in tis if t["task_id"] == "ingest" and t["map_index"] == 0)
    text = api.task_log(DAG_ID, run_id, "ingest", ingest["try_number"], map_index=0)
    assert f"period {first}" in text and "[DAG TEST] starting task_id=ingest map_index=0" in text, text[-3000:]


@pytest.mark.e2e
def test_scheduler_run_over_rest_equals_dags_test(airflow_up, keep_built_tables):
    env, api = airflow_up
    with psycopg.connect(warehouse.url()) as conn:
        by_dags_test = table_fingerprints(conn)
    assert any(fp.rows for fp in by_dags_test.values())
    assert empty_built_tables() > 0

    # as `make up` runs it: the same env() (LocalExecutor, parallelism above 1)
    assert env.get("AIRFLOW__CORE__EXECUTOR", "LocalExecutor") == "LocalExecutor"
    assert int(local_airflow.env()["AIRFLOW__CORE__PARALLELISM"]) > 1
    started = time.monotonic()
    api.patch(f"/api/v2/dags/{DAG_ID}", {"is_paused": False})
    run = api.trigger(DAG_ID, {"period": SCHEDULER_PERIOD}, logical_date=None)
    run_id = run["dag_run_id"]
    run = api.wait_for_run(DAG_ID, run_id, RUN_TIMEOUT)
    tis = api.task_instances(DAG_ID, run_id)
    assert run["state"] == "success", f"run {run_id}: {run['state']}; tasks: {api.task_states(DAG_ID, run_id)}"
    elapsed = time.monotonic() - started
    print(f"scheduler run of {SCHEDULER_PERIOD}: {elapsed:.0f}s from trigger to success, {len(tis)} task instances")

    runs = api.get(f"/api/v2/dags/{DAG_ID}/dagRuns", limit=100)["dag_runs"]
    assert not [r["dag_run_id"] for r in runs if r["run_type"] == "scheduled"], "unpausing started a scheduled run"

    # real durations: the run started after it was triggered, not at a logical date
    duration = datetime.fromisoformat(run["end_date"]) - datetime.fromisoformat(run["start_date"])
    assert 0 < duration.total_seconds() < elapsed + 5, duration
    assert _overlapping(tis), "no two task instances ran at the same time: the executor ran serially"

    # a task's log over the REST API, with a line the task wrote
    plan = next(t for t in tis if t["task_id"] == "plan")
    text = api.task_log(DAG_ID, run_id, "plan", plan["try_number"])
    assert f"run {run_id}: periods {SCHEDULER_PERIOD}" in text, text[-3000:]
    ingest = next(t for t in tis if t["task_id"] == "ingest" and t["map_index"] == 0)
    text = api.task_log(DAG_ID, run_id, "ingest", ingest["try_number"], map_index=0)
    assert f"period {SCHEDULER_PERIOD}" in text, text[-3000:]

    with psycopg.connect(warehouse.url()) as conn:
        by_scheduler = table_fingerprints(conn)
    assert differences(by_dags_test, by_scheduler) == []
