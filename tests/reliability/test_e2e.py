"""The real monthly DAG (`trivsel run` = `airflow dags test`) against a real PostgreSQL. Minutes each.

- Re-running a loaded period leaves marts and reporting identical; the run's logs hold no secret and no clear
  employee number (on the session's demo warehouse).
- A failure path with a warehouse restart in the middle of the run (on a PostgreSQL server of its own, so the
  restart cannot disturb the session's shared warehouse): random bytes in 607's hr_absence inbox fail
  verdict[607] only (its ingest lane records the quarantine and goes on), the other municipalities load, the restart is carried through by retries with backoff,
  and the run completes its downstream.
"""

from __future__ import annotations

import csv
import os
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
import throwaway_db

from trivsel.integrity import differences, table_fingerprints

PERIOD = "2014-01"


@pytest.mark.e2e
def test_rerunning_a_loaded_period_changes_no_table(demo_warehouse, demo_run, test_home):
    from trivsel import cli

    if PERIOD not in demo_run:
        pytest.skip(f"no sample deliveries for {PERIOD}")
    before = table_fingerprints(demo_warehouse, ("person", "marts", "reporting"))
    assert before, "the demo built no marts/reporting tables"
    rc = cli.run_period(PERIOD, quiet=True)
    assert rc == demo_run[PERIOD], "the re-run ends as the first run did"
    after = table_fingerprints(demo_warehouse, ("person", "marts", "reporting"))
    assert differences(before, after) == []


@pytest.mark.e2e
def test_run_logs_hold_no_secret_and_no_clear_employee_number(demo_run, test_home):
    """Every run log and Airflow task log of the session's demo runs (hr_absence payroll periods included)."""
    from trivsel import warehouse

    key = os.environ["TRIVSEL_PSEUDONYM_KEY"]
    password = urlsplit(warehouse.url()).password
    employees = set()
    for f in (test_home / "inbox" / "169" / "hr_absence").glob("*/fravaer_*.csv"):
        with f.open(encoding="cp1252", newline="") as fh:
            employees |= {r["Medarbejdernr"].strip() for r in csv.DictReader(fh, delimiter=";")}
    assert employees, "no payroll deliveries with employee numbers in the demo inbox"
    pattern = re.compile(r"(?<![\w.:+-])(" + "|".join(map(re.escape, sorted(employees))) + r")(?![\w.:])")
    logs = list((test_home / "logs").glob("run-*.log")) + [
        p for p in (test_home / "airflow" / "logs").rglob("*") if p.is_file()]
    if not warehouse.is_external():
        logs.append(warehouse.embedded().log_file)  # PostgreSQL's server log (COPY errors, issue 13)
    assert any(p.name.startswith("run-") for p in logs), "no run log (dags test writes task logs into it)"
    for p in logs:
        text = p.read_text(errors="replace")
        assert key not in text, f"{p} contains the pseudonymisation key"
        assert password not in text, f"{p} contains the warehouse password"
        hit = pattern.search(text)
        assert not hit, f"{p} contains the clear employee number {hit.group(1)}: ...{text[max(0, hit.start() - 80):hit.end() + 40]}..."


@pytest.mark.e2e
def test_failure_path_and_warehouse_restart_during_a_dag_run(tmp_path, sample_root, warehouse_url):
    home = tmp_path / "home"
    # Airflow's metadata DB lives on the session's server, the warehouse on a server of its own that the test
    # restarts: with both on one server, the restart also takes Airflow's own database away and
    # `airflow dags test` itself dies (found by this test; a deployment keeps them apart).
    meta_db = f"airflow_rel_{os.getpid()}"
    admin = urlsplit(warehouse_url)._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'drop database if exists "{meta_db}" with (force)')
        c.execute(f'create database "{meta_db}"')
    meta_url = urlsplit(warehouse_url)._replace(path=f"/{meta_db}").geturl()
    port = throwaway_db.free_port()
    env = throwaway_db.isolated_env(
        TRIVSEL_HOME=str(home), TRIVSEL_PG_PORT=str(port), TRIVSEL_TASK_RETRIES="3", TRIVSEL_RETRY_DELAY_SECONDS="3",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=meta_url.replace("postgresql://", "postgresql+psycopg://", 1))
    url = throwaway_db.run_python("from trivsel import warehouse; print(warehouse.start())", env, timeout=120)
    try:
        inbox = home / "inbox"
        for f in sample_root.glob(f"*/*/{PERIOD}/*"):
            dest = inbox / f.relative_to(sample_root)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, dest)
        bad = inbox / "607" / "hr_absence" / PERIOD / f"rettelse_{PERIOD}.xlsx"
        bad.parent.mkdir(parents=True, exist_ok=True)
        bad.write_bytes(random.Random(607).randbytes(30_000))
        trivsel = str(Path(sys.executable).with_name("trivsel"))
        started = time.monotonic()
        proc = subprocess.Popen([trivsel, "run", "--period", PERIOD], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        # restart the warehouse's server as soon as the first delivery of the run is registered (the ingest
        # tasks parse and COPY while it is `validating`; the run's validate task decides later): the ingest
        # tasks and the DAG run are in flight
        restarted_at = None
        deadline = time.monotonic() + 900
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                with psycopg.connect(url, connect_timeout=3) as c:
                    loaded = c.execute("select count(*) from audit.delivery"
                                       " where status in ('validating', 'loaded')").fetchone()[0]
            except psycopg.Error:
                loaded = 0
            if loaded:
                throwaway_db.run_python("from trivsel import warehouse; warehouse.restart()", env, timeout=120)
                restarted_at = time.monotonic() - started
                break
            time.sleep(0.2)
        out, _ = proc.communicate(timeout=1800)
        print(out[-4000:])
        assert restarted_at is not None, f"the run ended before any delivery loaded:\n{out[-3000:]}"

        failed = [line.strip() for line in out.splitlines() if line.strip().startswith("failed:")]
        assert proc.returncode == 1, out[-3000:]
        # 607's verdict (its lane recorded the quarantine and went on), and the run's final verdict naming 607
        # after everything else was published
        assert sorted(failed) == ["failed: run_outcome: failed", "failed: verdict[607]: failed"], out[-3000:]

        with psycopg.connect(meta_url) as c:
            run_id = c.execute("select run_id from dag_run where dag_id = 'trivsel_monthly' order by id desc limit 1"
                               ).fetchone()[0]
            tis = c.execute("select task_id, coalesce(rendered_map_index, map_index::text), state, try_number"
                            " from task_instance where dag_id = 'trivsel_monthly' and run_id = %s",
                            (run_id,)).fetchall()
        states = {(t, m): (s, n) for t, m, s, n in tis}
        print("task instances:", sorted(states.items()))
        assert states[("publish", "-1")][0] == "success", "the run completes its downstream"
        assert states[("loads_done", "-1")][0] == "success"
        assert all(s == "success" for (t, _m), (s, _n) in states.items() if t.startswith("dbt")), states
        ingest = {m: s for (t, m), (s, _n) in states.items() if t == "ingest"}
        assert ingest and set(ingest.values()) == {"success"}, ingest  # every lane, the restart retried
        assert states[("verdict", "607")][0] == "failed", states
        retried = sorted(f"{t}[{m}] x{n}" for (t, m), (s, n) in states.items() if n > 1 and s == "success")
        print(f"restart at {restarted_at:.0f}s; carried through by retries: {retried}")

        with psycopg.connect(url) as c:
            rows = c.execute("select municipality_code, file_name, status, reason from audit.delivery"
                             " where period = %s order by delivery_id", (PERIOD,)).fetchall()
        by_file = {}
        for code, name, status, reason in rows:
            by_file.setdefault((code, name), []).append((status, reason))
        assert by_file[("607", bad.name)][0][0] == "quarantined"
        assert bad.name in by_file[("607", bad.name)][0][1]
        for (code, name), history in by_file.items():
            if name != bad.name:
                assert history[-1][0] == "loaded", (code, name, history)
        assert {c for (c, n) in by_file if n != bad.name} >= {"169", "607"}

        log = (home / "logs" / f"run-{PERIOD}.log").read_text(errors="replace")
        assert bad.name in log and "quarantined" in log, "the run log summarises the quarantine"
    finally:
        subprocess.run([sys.executable, "-c", "from trivsel import warehouse; warehouse.stop()"], env=env,
                       capture_output=True, timeout=120)
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f'drop database if exists "{meta_db}" with (force)')
