"""What a run's upstream tasks actually did, measured for certification (issue 14).

Why. The certify task used to be handed `{"passed": True}` by the DAG and wrote it into
certified.publication_log: a claim, not a measurement. Now:

- every dbt task of the run records dbt's own results (run_results.json of its invocation: each model, seed
  and test with its status and message) in `audit.dbt_result`, through a Cosmos callback
  (`record_dbt_results`) that runs after dbt, also when dbt failed;
- certify reads those results and the states of this dag run's task instances (Airflow's execution API,
  `ti.get_task_states`), and `measure()` decides: it refuses when a dbt result failed or errored, when a
  dbt task, the gate, the quality gate, a statistics task or an ingest lane did not succeed. An ingest lane
  (trivsel.lanes) does not fail for one municipality's data: a file it could not parse or a load that failed
  is recorded (audit.ingest_failure) and the lane goes on, so a failed lane is infrastructure (a lost
  warehouse connection after its retries) and blocks. A municipality's verdict task (trivsel.verdict, a leaf) does not block:
  certify does not wait for it, and it fails on what the run already decided (a quarantine, a hold, a failed
  pull, an ingest finding); a verdict that failed for none of those (a crash) does block. `verdict` is mapped over the run's
  `findings` list only (the municipalities with a finding), so certify takes that list to name a verdict by
  its map index; a month without findings has no verdict instance (the mapped task is skipped).

The certify task therefore runs with trigger rule `all_done`: it must run to measure and record a refusal.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import psycopg

from trivsel import warehouse

log = logging.getLogger(__name__)

#: dbt result statuses that are a pass
DBT_OK = {"success", "pass", "skipped", "warn", "no-op"}
#: mapped per municipality with a finding (map index = the findings task's list): a failure the run explains
#: (the municipality's deliveries quarantined or held, or its pull failed) is tolerated; a verdict not run yet
#: or skipped (not judged: validate or the quality gate failed, which blocks by itself; or, unmapped, no
#: municipality had a finding) is a leaf certify does not wait for
PER_CODE = {"verdict"}
#: task states of a verdict that has not finished yet (or was not expanded yet), or skipped (not judged, or
#: the mapped task expanded to nothing: no finding)
PENDING = {None, "none", "scheduled", "queued", "running", "up_for_retry", "up_for_reschedule", "deferred",
           "restarting", "skipped"}
#: tasks after certify in the DAG: not upstream
DOWNSTREAM = {"certify", "publish", "run_outcome"}


#: the DAG's mapped tasks (get_task_states names a mapped task instance f"{task_id}_{map_index}")
MAPPED = {"ingest", "significance_tests", "verdict"}


def _task_of(key: str) -> tuple[str, int]:
    """'ingest_3' → ('ingest', 3); 'dbt_models' → ('dbt_models', -1)."""
    base, _, idx = key.rpartition("_")
    if base in MAPPED and idx.isdigit():
        return base, int(idx)
    return key, -1


def record_dbt_results(project_dir: str | Path, context: dict[str, Any] | None = None, **_: Any) -> int:
    """Cosmos callback: store the invocation's run_results.json in audit.dbt_result. Returns rows stored.

    Runs after dbt, before Cosmos raises dbt's failure, so failing tests are recorded too."""
    path = Path(project_dir) / "target" / "run_results.json"
    if context is None or not path.is_file():
        log.warning("no dbt run results to record (%s)", path)
        return 0
    ti = context["ti"]
    results = json.loads(path.read_text()).get("results", [])
    rows = [(context["run_id"], ti.task_id, ti.map_index if ti.map_index is not None else -1,
             getattr(ti, "try_number", 1) or 1, r["unique_id"], r["unique_id"].split(".")[0], r.get("status"),
             r.get("failures"), warehouse.redact((r.get("message") or "")[:1000])) for r in results]
    with warehouse.connect(warehouse.TRANSFORMER, autocommit=True) as conn:  # the dbt stage's own results
        store(conn, rows)
    bad = [r for r in rows if r[6] not in DBT_OK]
    log.info("recorded %d dbt results of %s (%d not passed)", len(rows), ti.task_id, len(bad))
    return len(rows)


def store(conn: psycopg.Connection, rows: list[tuple]) -> None:
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            """insert into audit.dbt_result (run_id, task_id, map_index, try_number, unique_id, resource_type,
                                             status, failures, message)
               values (%s, %s, %s, %s, %s, %s, %s, %s, %s)
               on conflict (run_id, task_id, map_index, try_number, unique_id) do update
               set status = excluded.status, failures = excluded.failures, message = excluded.message,
                   recorded_at = now()""", rows)


def dbt_results(conn: psycopg.Connection, run_id: str) -> list[dict[str, Any]]:
    """The run's dbt results, the last try of each task only (a retried task that passed counts as passed)."""
    rows = conn.execute(
        """select distinct on (task_id, map_index, unique_id) task_id, map_index, try_number, unique_id,
                  resource_type, status, failures, message
             from audit.dbt_result where run_id = %s
            order by task_id, map_index, unique_id, try_number desc""", (run_id,)).fetchall()
    last_try = {}
    for r in rows:
        last_try[(r[0], r[1])] = max(last_try.get((r[0], r[1]), 0), r[2])
    return [{"task_id": t, "map_index": m, "unique_id": u, "resource_type": k, "status": s, "failures": f,
             "message": msg} for t, m, n, u, k, s, f, msg in rows if n == last_try[(t, m)]]


def quarantined_jobs(conn: psycopg.Connection, jobs: list[dict[str, str]]) -> set[tuple[str, str]]:
    """(code, period) of the jobs that have a quarantined delivery: their ingest failed on a data error."""
    if not jobs:
        return set()
    rows = conn.execute(
        """select distinct municipality_code, period from audit.delivery
            where status = 'quarantined' and (municipality_code, period) in
                  (select * from unnest(%s::text[], %s::text[]))""",
        ([j["code"] for j in jobs], [j["period"] for j in jobs])).fetchall()
    return {(c, p) for c, p in rows}


def excused_codes(conn: psycopg.Connection, run_id: str, jobs: list[dict[str, str]]) -> set[str]:
    """Municipalities whose verdict may fail besides a quarantine: deliveries of the run's jobs held by the
    quality gate, a pull of this run that failed (audit.pull_failure), or an ingest job of this run that
    quarantined a file or failed (audit.ingest_failure, recorded by its lane)."""
    if not jobs:
        return set()
    codes, periods = [j["code"] for j in jobs], [j["period"] for j in jobs]
    rows = conn.execute(
        """select municipality_code from audit.delivery
            where status = 'waiting' and reason like 'held by the quality gate%%'
              and (municipality_code, period) in (select * from unnest(%s::text[], %s::text[]))
           union
           select municipality_code from audit.pull_failure where run_id = %s and municipality_code = any(%s)
           union
           select municipality_code from audit.ingest_failure where run_id = %s and municipality_code = any(%s)""",
        (codes, periods, run_id, codes, run_id, codes)).fetchall()
    return {c for (c,) in rows}


def measure(task_states: dict[str, str | None], results: list[dict[str, Any]], jobs: list[dict[str, str]],
            quarantined: set[tuple[str, str]], excused: set[str] = frozenset(),
            judged: list[str] | None = None, lanes: list[dict] | None = None) -> dict[str, Any]:
    """The check `upstream` of certification, from this run's task states and dbt results.

    task_states: {task key as get_task_states gives it: state}; jobs: the run's (municipality, period)
    jobs; lanes: the lanes task's list, the ingest map indexes' lanes in order (their labels name them; None:
    an ingest instance is named by its key); quarantined: the (code, period) jobs with a quarantined delivery; excused: the municipalities
    with deliveries held by the quality gate or a failed pull (excused_codes); judged: the findings task's
    list, the verdicts' codes in map-index order (None: findings did not succeed, which blocks by itself; a
    failed verdict is then not attributed to a municipality and blocks too)."""
    blocking: list[str] = []
    tolerated: list[str] = []
    codes = list(judged or [])  # the order `verdict` is mapped in (the findings task's list)
    states: dict[str, str | None] = {}
    for key, state in sorted(task_states.items()):
        task, idx = _task_of(key)
        if task in DOWNSTREAM:
            continue
        label = key
        if task == "ingest" and 0 <= idx < len(lanes or []):
            label = f"ingest[{lanes[idx]['label']}]"
        elif task in PER_CODE and 0 <= idx < len(codes):
            label = f"{task}[{codes[idx]}]"
        states[label] = state
        if state == "success":
            continue
        if task in PER_CODE and idx == -1 and state == "skipped" and judged == []:
            tolerated.append(f"{label}: skipped (no municipality had a finding: nothing to judge)")
        elif task in PER_CODE and state in PENDING:
            tolerated.append(f"{label}: {state or 'not run'} (a leaf: certify does not wait for it)")
        elif task in PER_CODE and state == "failed" and 0 <= idx < len(codes) \
                and (codes[idx] in excused or any(c == codes[idx] for c, _p in quarantined)):
            tolerated.append(f"{label}: failed on its quarantined or held deliveries, a failed pull or "
                             f"a failed load (published without them)")
        else:
            blocking.append(f"task {label} is {state or 'not run'}")
    failed_results = [r for r in results if r["status"] not in DBT_OK]
    blocking += [f"dbt {r['unique_id']} ({r['task_id']}): {r['status']}: {(r['message'] or '')[:300]}"
                 for r in failed_results]
    by_status: dict[str, int] = {}
    for r in results:
        by_status[r["status"]] = by_status.get(r["status"], 0) + 1
    if not results:
        blocking.append("no dbt results were recorded for this run (audit.dbt_result)")
    check: dict[str, Any] = {
        "passed": not blocking,
        "what": "measured: this dag run's task states (Airflow) and every dbt result of its dbt tasks "
                "(audit.dbt_result, from run_results.json)",
        "task_states": states, "dbt_results_by_status": by_status,
        "dbt_tests": sum(1 for r in results if r["resource_type"] == "test"),
        "tolerated": tolerated,
    }
    if blocking:
        check["reason"] = "; ".join(blocking)[:3000]
        check["blocking"] = blocking[:50]
    return check


def from_context(context: dict[str, Any], jobs: list[dict[str, str]],
                 judged: list[str] | None = None, lanes: list[dict] | None = None) -> dict[str, Any]:
    """measure() for the running certify task: reads the dag run's task states and the run's dbt results.
    judged: the findings task's list; lanes: the lanes task's (see measure)."""
    ti = context["ti"]
    run_id = context["run_id"]
    states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[run_id]).get(run_id, {})
    with warehouse.connect(warehouse.PUBLISHER, autocommit=True) as conn:  # certify reads audit
        results = dbt_results(conn, run_id)
        quarantined = quarantined_jobs(conn, jobs)
        excused = excused_codes(conn, run_id, jobs)
    return measure(states, results, jobs, quarantined, excused, judged, lanes)
