"""One municipality's orphan never stops another's figures (issue 12 §3), through the real monthly DAG.

One `trivsel run --period 2013-12` (every sample delivery of that period: incidents, use of force and sick
leave of 169, 461 and 607) on a warehouse and Airflow home of its own, where Høje-Taastrup (169) has two
orphaned case reviews:

- this period's: its registry export arbejdsskader_2013.csv is unreadable (quarantined), the review
  sagsgennemgang_2013.csv arrives with it. Caught at ingest: the review waits (trivsel.consistency). 169's
  ingest lane records the quarantine (audit.ingest_failure), goes on and stays green.
- an earlier period's (2012-12), loaded in the warehouse before the ingest check existed: the state of
  issue 12's reproduction, where `assert_ohs_case_review_cases_registered` failed in `dbt_staging` and
  skipped every model, statistic and certification of every municipality. The ingest of 2013-12 does not
  touch it; the quality gate (trivsel.quality) holds it, and only `verdict[169]` fails, naming both (the
  run's only verdict instance: verdict is mapped over the municipalities with a finding).

Every other municipality's marts, reporting and certified tables are built and published, 169's other
sources too, and the run's log and marts.delivery_coverage name the orphans.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import throwaway_db

PERIOD = "2013-12"
ORPHAN_2012 = "Sagsnr;Dato;Også vold;Udeladt;Begrundelse\nAS-2012-9999;01-06-2012;Ja;Nej;\n"


def _municipalities(c, relation: str, where: str = "true") -> set[str]:
    return {r[0] for r in c.execute(f"select distinct municipality_code from {relation} where {where}")}


@pytest.mark.e2e
def test_an_orphaned_case_review_stops_only_its_own_municipality(test_home, sample_root):
    # beside the session's test home, not under pytest's numbered tmp dirs: on a machine shared by several
    # pytest sessions, another session's cleanup of old tmp dirs took the server's data away mid-run
    home = test_home.parent / "isolation-e2e"
    shutil.rmtree(home, ignore_errors=True)
    # a PostgreSQL server of its own (warehouse + Airflow metadata), beside the session's
    env = throwaway_db.isolated_env(TRIVSEL_HOME=str(home), TRIVSEL_PG_PORT=str(throwaway_db.free_port()),
                                    TRIVSEL_TASK_RETRIES="0")
    url = throwaway_db.run_python("from trivsel import warehouse; print(warehouse.start())", env, timeout=180)
    embedded_env = dict(env)
    # the run addresses that server as an external warehouse: no task starts or stops it
    env.update(WAREHOUSE_URL=url)
    env.setdefault("TRIVSEL_PSEUDONYM_KEY", "isolation-e2e-pseudonym-key-0123456789")
    try:
        inbox = home / "inbox"
        for f in sample_root.glob(f"*/*/{PERIOD}/*"):
            dest = inbox / f.relative_to(sample_root)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, dest)
        review = inbox / "169" / "incidents" / PERIOD / "sagsgennemgang_2013.csv"
        registry = inbox / "169" / "incidents" / PERIOD / "arbejdsskader_2013.csv"
        assert review.exists() and registry.exists(), "the samples have 169's review with its export"
        registry.write_bytes(random.Random(169).randbytes(4000))

        # The reproduction's state: a review loaded without its registry (before the ingest check existed).
        old = inbox / "169" / "incidents" / "2012-12" / "sagsgennemgang_2012.csv"
        old.parent.mkdir(parents=True)
        old.write_text(ORPHAN_2012, encoding="utf-8")
        throwaway_db.run_python("from trivsel import loading; o = loading.ingest_municipality('169', '2012-12', 'before-upgrade');"
            " print(o[0].status)", env, timeout=300)
        with psycopg.connect(url, autocommit=True) as c:
            n = c.execute("update audit.delivery set status = 'loaded', reason = null"
                          " where file_name = %s and status = 'waiting'", (old.name,)).rowcount
        assert n == 1

        trivsel = str(Path(sys.executable).with_name("trivsel"))
        proc = subprocess.run([trivsel, "run", "--period", PERIOD], env=env, capture_output=True, text=True,
                              timeout=2400)
        out = proc.stdout + proc.stderr
        print(out[-4000:])
        failed = sorted(line.strip() for line in out.splitlines() if line.strip().startswith("failed:"))
        assert proc.returncode == 1, out[-3000:]
        # only 169's verdict fails (its ingest lane recorded the quarantined registry export and went on), and
        # the run's final verdict (run_outcome), which names 169 after everything else was published
        assert failed == ["failed: run_outcome: failed", "failed: verdict[169]: failed"], failed  # sorted
        lanes = json.loads(throwaway_db.run_python(
            "import json, psycopg; from trivsel import airflow_env; url = airflow_env.env()"
            "['AIRFLOW__DATABASE__SQL_ALCHEMY_CONN'].replace('postgresql+psycopg://', 'postgresql://', 1); c ="
            " psycopg.connect(url); print(json.dumps(c.execute(\"select rendered_map_index, state from"
            " task_instance where dag_id = 'trivsel_monthly' and task_id = 'ingest'\").fetchall()))",
            env, timeout=120))
        assert lanes and {state for _label, state in lanes} == {"success"}, lanes
        assert any("169" in label.split() for label, _s in lanes), lanes  # a lane's map index names 169
        # verdict is mapped over the municipalities with a finding only: 169's is its one instance (461 and
        # 607 passed: a green ingest and no verdict instance)
        verdicts = json.loads(throwaway_db.run_python(
            "import json, psycopg; from trivsel import airflow_env; url = airflow_env.env()"
            "['AIRFLOW__DATABASE__SQL_ALCHEMY_CONN'].replace('postgresql+psycopg://', 'postgresql://', 1); c ="
            " psycopg.connect(url); print(json.dumps(c.execute(\"select coalesce(rendered_map_index, map_index::text),"
            " state from task_instance where dag_id = 'trivsel_monthly' and task_id = 'verdict'\").fetchall()))",
            env, timeout=120))
        assert verdicts == [["169", "failed"]], verdicts
        run_log = (home / "logs" / f"run-{PERIOD}.log").read_text(errors="replace")
        assert "municipalities 169 had deliveries quarantined or held" in run_log, run_log[-3000:]
        assert "upstream measured: passed" in run_log, "certify measured the run's upstream"

        with psycopg.connect(url, autocommit=True) as c:
            audit = {name: (status, reason) for name, status, reason in c.execute(
                "select file_name, status, reason from audit.delivery order by delivery_id")}
            assert audit[registry.name][0] == "quarantined"
            # the lane's record of it, which verdict[169] names (findings listed 169 for it too)
            ((kind, lines),) = c.execute("select kind, lines from audit.ingest_failure"
                                         " where municipality_code = '169'").fetchall()
            assert kind == "quarantined" and registry.name in lines[0], lines
            assert audit[review.name][0] == "waiting" and registry.name in audit[review.name][1]
            assert audit[old.name][0] == "waiting"
            assert "assert_ohs_case_review_cases_registered" in audit[old.name][1]
            assert all(s == "loaded" for name, (s, _r) in audit.items()
                       if name not in (registry.name, review.name, old.name)), audit

            # nothing of the held reviews reaches the models
            assert c.execute("select count(*) from staging.stg_ohs_case_review__ohs_case_review").fetchone()[0] == 0

            # every other municipality's figures are built and published
            year = "year = 2013"
            assert _municipalities(c, "marts.incident_episode_year", f"{year} and n_registered is not null") \
                >= {"461", "607"}
            assert _municipalities(c, "certified.incident_episode_year", year) >= {"461", "607"}
            # and 169's other sources too
            assert _municipalities(c, "marts.absence_unit_year", year) >= {"169", "607"}
            assert _municipalities(c, "certified.absence_unit_year", year) >= {"169", "607"}
            assert _municipalities(c, "reporting.absence_change") >= {"169", "607"}
            publication = c.execute("select period from certified.publication_log order by publication_id desc"
                                    " limit 1").fetchone()
            assert publication == (PERIOD,), "the run certified and published"

            # marts.delivery_coverage names the orphans (and the certified coverage still builds)
            issues = {(p, s): q for p, s, q in c.execute(
                "select period, source, quality_issue from marts.delivery_coverage where municipality_code = '169'")}
            assert review.name in issues[(PERIOD, "incidents")] and "waiting" in issues[(PERIOD, "incidents")]
            assert old.name in issues[("2012-12", "incidents")]
            assert "quality gate" in issues[("2012-12", "incidents")]
            assert all(q is None for (p, s), q in issues.items() if s != "incidents"), issues
            assert c.execute("select count(*) from marts.delivery_coverage where municipality_code <> '169'"
                             " and quality_issue is not null").fetchone()[0] == 0

        log = (home / "logs" / f"run-{PERIOD}.log").read_text(errors="replace")
        assert re.search(r"municipality 169\b.*waiting", log), "the ingest names the waiting review"
        assert review.name in log and old.name in log
        assert re.search(r"quality gate: municipality 169: .*" + re.escape(old.name), log)
    finally:
        subprocess.run([sys.executable, "-c", "from trivsel import warehouse; warehouse.stop()"], env=embedded_env,
                       capture_output=True, timeout=120)
        shutil.rmtree(home, ignore_errors=True)
