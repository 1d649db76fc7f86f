"""The per-municipality quality gate: a dbt data test failing on one municipality's rows holds that
municipality's deliveries, never everyone's figures.

Why this design. Cosmos runs a model's tests in the model's own task (TestBehavior.BUILD), and
`dbt_staging` builds and tests every staging view in one task: a test failing on one municipality's rows
failed that task, and with it every downstream model, statistic and certification of *all* municipalities.
Splitting the tests per municipality (one dbt invocation each) would multiply dbt's start-up cost by the
number of municipalities; lowering them to `severity: warn` would publish the bad rows. Instead:

- Data tests that can fail on one municipality's rows are tagged `per_municipality` and select
  `municipality_code` and `delivery_id` for every failing row (a contract: see
  `dbt/tests/*/assert_*` with `tags=['per_municipality']`). They read staging models only. The DAG's
  `dbt_staging` and `dbt_models` tasks exclude them (`exclude=tag:per_municipality`).
- The `quality_gate` task, right after `dbt_staging` and before any other model, runs them once with
  `--store-failures` and reads the failing rows. Every loaded delivery they name is held: its status becomes
  `waiting` with the test's name in the reason (audit.delivery; raw rows are kept). Staging reads only
  `loaded` deliveries, so the held rows vanish from every model, statistic and certified table of this run,
  and the tests are run once more to prove they now pass (if not, the gate fails: the old, safe behaviour).
- The gate returns the held deliveries by municipality; the mapped `verdict` task per municipality
  (trivsel.verdict) fails for a municipality with held deliveries (its log names the municipality, the test
  and the files), and only that one: the models, statistics, certification and publication of everybody else
  carry on.
- A held delivery is re-evaluated like any waiting one (trivsel.consistency, at the next ingest of its
  municipality and period) and marked in `marts.delivery_coverage.quality_issue`.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from psycopg import sql

from trivsel import settings, snapshot, warehouse

log = logging.getLogger(__name__)

TAG = "per_municipality"
#: the run id for dbt (macro trivsel_run_id), as the DAG's dbt tasks pass it (trivsel.dag_factory)
RUN_ID_ENV = "TRIVSEL_RUN_ID"
SELECTOR = f"tag:{TAG}"


class QualityGateFailed(RuntimeError):
    """A per-municipality test still fails after its deliveries were held (its rows name no delivery)."""


def _dbt_test(target_dir: Path, run_id: str | None = None) -> tuple[int, str, list[dict[str, Any]]]:
    """`dbt test --select tag:per_municipality --store-failures`; (return code, output, results). With the
    run id as TRIVSEL_RUN_ID, as every dbt task of the run has it (its pinned snapshot, trivsel.snapshot): an
    environment variable, not a dbt var, so that the partial parse kept in target_dir survives between runs
    (dbt re-parses the whole project when its CLI vars change; macro trivsel_run_id)."""
    env = dict(os.environ, **warehouse.dbt_env(warehouse.TRANSFORMER))
    env.pop(RUN_ID_ENV, None)
    if run_id:
        env[RUN_ID_ENV] = run_id
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    dbt = str(Path(sys.executable).with_name("dbt"))
    cmd = [dbt, "test", "--select", SELECTOR, "--store-failures", "--project-dir", str(settings.dbt_dir()),
           "--profiles-dir", str(settings.dbt_dir()), "--target-path", str(target_dir),
           "--log-path", str(target_dir / "logs")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=str(settings.dbt_dir()))
    out = warehouse.redact(proc.stdout + proc.stderr)
    path = target_dir / "run_results.json"
    results = json.loads(path.read_text()).get("results", []) if path.exists() else []
    if proc.returncode and not results:
        raise QualityGateFailed(f"dbt test --select {SELECTOR} could not run:\n{out[-3000:]}")
    return proc.returncode, out, results


def _failing(results: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(test name, relation of its stored failures) for every failing test."""
    failing = []
    for r in results:
        if r.get("status") in ("fail", "warn", "error") and (r.get("failures") or r.get("status") == "error"):
            name = r["unique_id"].split(".")[2]
            if r.get("status") == "error" or not r.get("relation_name"):
                raise QualityGateFailed(f"per-municipality test {name} errored: {(r.get('message') or '')[:500]}")
            failing.append((name, r["relation_name"]))
    return failing


def _hold(conn, test: str, relation: str, run_id: str | None) -> dict[str, list[str]]:
    """Hold the loaded deliveries a test's failing rows name. {municipality_code: [lines]}."""
    schema_name, table = [p.strip('"') for p in relation.split(".")[-2:]]
    cols = {r[0] for r in conn.execute(
        "select column_name from information_schema.columns where table_schema = %s and table_name = %s",
        (schema_name, table))}
    if not {"municipality_code", "delivery_id"} <= cols:
        raise QualityGateFailed(f"per-municipality test {test} fails, and its rows do not carry municipality_code "
                                f"and delivery_id (columns {sorted(cols)}): no delivery to hold")
    rows = conn.execute(sql.SQL(
        "select f.municipality_code, f.delivery_id, count(*) from {}.{} as f group by 1, 2 order by 1, 2").format(
        sql.Identifier(schema_name), sql.Identifier(table))).fetchall()
    held: dict[str, list[str]] = {}
    for code, did, n in rows:
        reason = (f"held by the quality gate (run {run_id or '?'}): dbt test {test} fails on {n} rows of this "
                  f"delivery of municipality {code}; its rows are kept out of staging, marts and certified until "
                  f"it matches (it is re-checked at the next ingest of its period)")
        with conn.transaction():
            snapshot.hold(conn, run_id, did, reason)  # out of this run's models too (its pinned snapshot)
            hit = conn.execute(
                "update audit.delivery set status = 'waiting', reason = %s, decided_at = now()"
                " where delivery_id = %s and status = 'loaded'"
                " returning municipality_code, source, period, file_name", (reason, did)).fetchone()
        if hit is None:
            continue
        m, source, period, file_name = hit
        line = f"{m}/{source}/{period} {file_name} (delivery {did}): dbt test {test} fails on {n} rows; held (waiting)"
        log.error("quality gate: municipality %s: %s", m, line)
        held.setdefault(m, []).append(line)
    return held


def gate(run_id: str | None = None) -> dict[str, list[str]]:
    """Run the per-municipality tests; hold what fails. Returns {municipality_code: [held deliveries]}."""
    target = settings.home() / "dbt-quality-target"  # kept between runs: dbt's partial parse
    target.mkdir(parents=True, exist_ok=True)
    rc, out, results = _dbt_test(target, run_id)
    failing = _failing(results)
    if not failing:
        log.info("quality gate: %d per-municipality tests pass", len(results))
        return {}
    held: dict[str, list[str]] = {}
    with warehouse.connect(warehouse.TRANSFORMER, autocommit=True) as conn:
        for test, relation in failing:
            for code, lines in _hold(conn, test, relation, run_id).items():
                held.setdefault(code, []).extend(lines)
    rc, out, results = _dbt_test(target, run_id)
    still = _failing(results)
    if still:
        raise QualityGateFailed(f"per-municipality tests still fail after holding {held}: {still}\n{out[-2000:]}")
    log.info("quality gate: held %s; the tests pass without them", {k: len(v) for k, v in held.items()})
    return held
