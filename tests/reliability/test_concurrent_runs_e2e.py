"""Two DAG runs of one period at the same moment, through the real monthly DAG (issue 14, "concurrency-safe
by construction": "A test runs two loads, and two DAG runs, of one period at the same moment. The result
equals one of them, with one `loaded` version per key").

One warehouse server; two `trivsel run --period 2014-01` processes started together, each an `airflow dags
test` with an Airflow home and metadata database of its own (two installations against one warehouse: in
one metadata database Airflow's `dags test` replaces a run of the same logical date). The inbox holds
Høje-Taastrup's payroll file of the period whose original is already loaded and which was corrected since:
both runs' ingests race for the correction. Then:

- both runs end, each with its state in its output;
- exactly one `loaded` version per key, and it is the correction;
- the model phases did not overlap: the second run's gate waited for the build lease
  (trivsel.build_lease), its dbt tasks started after the first run released it, and its snapshot pinned the
  same loaded deliveries;
- `trivsel fingerprint` afterwards equals the fingerprint after a third, sequential re-run of the period.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
import throwaway_db

PERIOD = "2014-01"
PAYROLL = f"169/hr_absence/{PERIOD}/fravaer_{PERIOD}.csv"
TRIVSEL = str(Path(sys.executable).with_name("trivsel"))


def _fingerprint(env: dict) -> str:
    r = subprocess.run([TRIVSEL, "fingerprint"], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("\n") > 10, r.stdout
    return r.stdout


def _metadata(url: str, database: str) -> str:
    return urlsplit(url)._replace(path=f"/{database}").geturl()


@pytest.mark.e2e
def test_two_runs_of_one_period_at_once_build_one_after_the_other(test_home, sample_root):
    home = test_home.parent / "concurrent-runs-e2e"
    shutil.rmtree(home, ignore_errors=True)
    base = throwaway_db.isolated_env()
    server_env = {**base, "TRIVSEL_HOME": str(home / "server"),
                  "TRIVSEL_PG_PORT": str(throwaway_db.free_port())}
    started = time.monotonic()
    url = throwaway_db.run_python("from trivsel import warehouse; print(warehouse.start())", server_env, timeout=180)
    try:
        passwords = json.loads(throwaway_db.run_python("import json; from trivsel import warehouse; print(json.dumps("
                                   "{r: warehouse.role_password(r) for r in warehouse.STAGE_ROLES}))", server_env))
        with psycopg.connect(_metadata(url, "postgres"), autocommit=True) as c:
            for db in ("airflow_a", "airflow_b"):
                c.execute(f"drop database if exists {db} with (force)")
                c.execute(f"create database {db}")
        # both runs address the server as an external warehouse, each stage as its own role
        common = {**base, "WAREHOUSE_URL": url, "TRIVSEL_INBOX": str(home / "inbox"),
                  "TRIVSEL_ARCHIVE": str(home / "archive"), "TRIVSEL_TASK_RETRIES": "0",
                  "TRIVSEL_PSEUDONYM_KEY": "concurrent-runs-e2e-pseudonym-key-0123456789",
                  **{f"TRIVSEL_{r.upper()}_PASSWORD": pw for r, pw in passwords.items()}}
        envs = {name: {**common, "TRIVSEL_HOME": str(home / f"run-{name}"),
                       "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": _metadata(url, f"airflow_{name}").replace(
                           "postgresql://", "postgresql+psycopg://", 1)} for name in ("a", "b")}

        payroll = home / "inbox" / PAYROLL
        payroll.parent.mkdir(parents=True)
        shutil.copyfile(sample_root / PAYROLL, payroll)
        status = throwaway_db.run_python(f"from trivsel import loading; print(loading.ingest_municipality('169', '{PERIOD}',"
                     " 'before-correction')[0].status)", envs["a"], timeout=300)
        assert status == "loaded"
        correction = b"".join(payroll.read_bytes().splitlines(keepends=True)[:-1])
        payroll.write_bytes(correction)  # the municipality's corrected re-delivery, not loaded yet

        # each installation's metadata database and the shared dbt manifest, before the race
        preparing = [subprocess.Popen([sys.executable, "-c", "from trivsel import airflow_env, dbt_manifest;"
                                       " airflow_env.ensure_metadata_db(); dbt_manifest.ensure()"], env=e)
                     for e in (envs["a"], envs["b"])]
        assert [p.wait(timeout=600) for p in preparing] == [0, 0]

        race = time.monotonic()
        procs = {name: subprocess.Popen([TRIVSEL, "run", "--period", PERIOD], env=e, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True) for name, e in envs.items()}
        outputs = {name: p.communicate(timeout=2400)[0] for name, p in procs.items()}
        print(f"two concurrent runs: {time.monotonic() - race:.0f} s", {n: o[-1500:] for n, o in outputs.items()})
        for name, p in procs.items():  # both ended, each with its state
            assert f"period {PERIOD}: success" in outputs[name] and p.returncode == 0, outputs[name][-3000:]

        run_ids = {}
        for name in envs:
            with psycopg.connect(_metadata(url, f"airflow_{name}")) as c:
                (run_ids[name],) = c.execute("select run_id from dag_run where dag_id = 'trivsel_monthly'").fetchone()
        assert run_ids["a"] != run_ids["b"]

        with psycopg.connect(url, autocommit=True) as c:
            per_key = c.execute(
                "select municipality_code, source, period, scheme, count(*) filter (where status = 'loaded'),"
                " array_agg(status order by delivery_id) from audit.delivery group by 1, 2, 3, 4").fetchall()
            assert per_key and all(n == 1 for *_k, n, _s in per_key), per_key
            key = [r for r in per_key if r[:3] == ("169", "hr_absence", PERIOD)]
            assert len(key) == 1 and key[0][5][:2] == ["superseded", "loaded"], key  # the correction won
            loaded = c.execute("select delivery_id, checksum_sha256 from audit.delivery where status = 'loaded'"
                               " and municipality_code = '169' and source = 'hr_absence'").fetchone()
            assert loaded[1] == __import__("hashlib").sha256(correction).hexdigest()

            history = c.execute("select run_id, acquired_at, released_at, released_by from"
                                " audit.build_lease_history order by acquired_at").fetchall()
            assert [h[0] for h in history] and sorted(h[0] for h in history) == sorted(run_ids.values()), history
            (first, first_at, first_released, how), (second, second_at, _r, _h) = history
            assert how == "run_outcome" and first_released is not None and all(h[2] for h in history), history
            assert second_at >= first_released, "the second run took the lease before the first released it"
            assert c.execute("select holder_run_id from audit.build_lease").fetchone() == (None,)
            pins = dict(c.execute("select run_id, pinned_at from audit.run_pin"))
            assert pins[second] >= first_released, "the second run pinned before the first's build ended"
            snapshots = [{r[0] for r in c.execute("select delivery_id from audit.run_snapshot where run_id = %s"
                                                  " and status = 'loaded'", (r,))} for r in (first, second)]
            assert loaded[0] in snapshots[0] and snapshots[0] == snapshots[1], snapshots

        # the second run's dbt phase started after the first released the lease (its own Airflow's record)
        second_name = next(n for n, r in run_ids.items() if r == second)
        with psycopg.connect(_metadata(url, f"airflow_{second_name}")) as c:
            starts = [r[0] for r in c.execute("select start_date from task_instance where run_id = %s and"
                                              " (task_id like 'dbt%%')", (second,))]
        assert starts and min(starts) >= first_released, (starts, first_released)
        log = (home / f"run-{second_name}" / "logs" / f"run-{PERIOD}.log").read_text(errors="replace")
        assert f"waiting for run {first}'s model build" in log

        # a re-run gives the same warehouse
        concurrent = _fingerprint(envs["a"])
        sequential = subprocess.run([TRIVSEL, "run", "--period", PERIOD], env=envs["a"], capture_output=True,
                                    text=True, timeout=2400)
        assert sequential.returncode == 0, (sequential.stdout + sequential.stderr)[-3000:]
        assert _fingerprint(envs["a"]) == concurrent
        print(f"concurrent-runs e2e: {time.monotonic() - started:.0f} s in all")
    finally:
        subprocess.run([sys.executable, "-c", "from trivsel import warehouse; warehouse.stop()"], env=server_env,
                       capture_output=True, timeout=120)
        shutil.rmtree(home, ignore_errors=True)
