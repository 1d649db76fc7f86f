"""marts.delivery_coverage tells every delivery state apart (issue 12 §5): delivered, partly_quarantined,
quarantined, waiting, overdue, unroutable and not_delivered, each with its counts and reasons.

A throwaway database of the session's test server: the audit rows the loader (and, for `waiting` and
`unroutable`, the isolation and parsing steps) write, for a municipality nobody has seen (code 901), then
the real dbt models `+delivery_coverage` built and tested (not_null, unique, accepted_values) over them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import throwaway_db
from psycopg.rows import dict_row

DB = "status_coverage"
CODE = "901"

#: (municipality_code, source, period, scheme, file_name, status, reason); delivery ids follow this order
DELIVERIES = [
    # incidents 2013-12: the registry export loaded, its case review quarantined -> partly_quarantined
    (CODE, "incidents", "2013-12", "ohs_registry_export", "arbejdsskader_2013.csv", "loaded", None),
    (CODE, "incidents", "2013-12", "ohs_case_review", "sagsgennemgang_2013.csv", "quarantined",
     "sagsgennemgang_2013.csv row 4 column sagsnr: not a case number"),
    # hr_absence 2013-12: the only file quarantined -> quarantined
    (CODE, "hr_absence", "2013-12", "hr_unit_year_summary", "sygefravaer_aar_2013.csv", "quarantined",
     "sygefravaer_aar_2013.csv row 2 column fravaer_pct: ambiguous decimal separator"),
    # hr_absence 2013-11: quarantined, then the corrected file of the same scheme loaded -> delivered
    (CODE, "hr_absence", "2013-11", "hr_payroll_csv", "fravaer_2013-11.csv", "quarantined",
     "fravaer_2013-11.csv row 7 column timer: not a number"),
    (CODE, "hr_absence", "2013-11", "hr_payroll_csv", "fravaer_2013-11_rettet.csv", "loaded", None),
    # incidents 2012-12: a case review held until its registry export comes -> waiting
    (CODE, "incidents", "2012-12", "ohs_case_review", "sagsgennemgang_2012.csv", "waiting",
     "case review names cases 17, 18 its registry export (not delivered yet) does not have"),
    # survey 2013-12: only a file in a sub-folder -> unroutable, on the municipality's own key
    (CODE, "survey", "2013-12", None, "ekstra/besvarelser.csv", "unroutable", "a sub-folder of the period folder"),
    # unknown municipality folder and a malformed period folder: their own '(unknown)' keys
    (None, None, None, None, "999/hr_absence/2013-12/x.csv", "unroutable", "unknown municipality folder 999"),
    (None, None, None, None, "998/survey/2013-12/y.csv", "unroutable", "unknown municipality folder 998"),
    (CODE, "hr_absence", None, None, "2014-3/fravaer.csv", "unroutable", "malformed period folder 2014-3"),
]


def _dbt(url: str, target: Path, *args: str) -> str:
    trivsel = str(Path(sys.executable).with_name("trivsel"))
    cmd = [trivsel, "dbt", *args, "--target-path", str(target / "target"), "--log-path", str(target / "logs")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=dict(os.environ, WAREHOUSE_URL=url))
    assert proc.returncode == 0, f"{' '.join(cmd[1:])}\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def coverage(warehouse_url, tmp_path_factory):
    url = throwaway_db.create(warehouse_url, DB)
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        # the statuses and the nullable keys the isolation and parsing steps add to audit.delivery
        conn.execute("alter table audit.delivery drop constraint if exists delivery_status_check")
        for column in ("municipality_code", "source", "period"):
            conn.execute(f"alter table audit.delivery alter column {column} drop not null")
        conn.execute("insert into raw.config_source (municipality_code, source, cadence, delivers, schemes, due_day)"
                     " values (%s, 'hr_absence', 'monthly', true, 'hr_payroll_csv,hr_unit_year_summary', 5),"
                     " (%s, 'incidents', 'yearly', true, 'ohs_registry_export,ohs_case_review', null),"
                     " (%s, 'survey', 'wave', true, 'survey_respondent_csv', null),"
                     " (%s, 'use_of_force', 'yearly', false, null, null)", (CODE,) * 4)
        conn.execute("insert into audit.period_run (period, run_id, as_of) values"
                     " ('2013-11', 'r1', '2013-12-20'), ('2013-12', 'r2', '2014-01-20'), ('2014-01', 'r3', '2014-02-20')")
        for i, (code, source, period, scheme, name, status, reason) in enumerate(DELIVERIES):
            conn.execute(
                "insert into audit.delivery (municipality_code, source, scheme, period, file_name, checksum_sha256,"
                " size_bytes, archive_path, status, reason, rows_loaded)"
                " values (%s, %s, %s, %s, %s, %s, 10, %s, %s, %s, %s)",
                (code, source, scheme, period, name, f"{i:064x}", f"/archive/{i}", status, reason,
                 5 if status == "loaded" else 0))
        # the real models and their tests (not_null, unique key, accepted status values)
        _dbt(url, tmp_path_factory.mktemp("dbt"), "build", "--select", "+delivery_coverage")
        rows = conn.execute("select * from marts.delivery_coverage").fetchall()
    yield {(r["municipality_code"], r["source"], r["period"]): r for r in rows}
    throwaway_db.drop(warehouse_url, DB)


def test_one_loaded_and_one_quarantined_file_is_partly_quarantined(coverage):
    r = coverage[(CODE, "incidents", "2013-12")]
    assert r["status"] == "partly_quarantined"
    assert (r["n_loaded"], r["n_quarantined"], r["n_quarantined_open"], r["n_files"]) == (1, 1, 1, 2)
    assert "sagsgennemgang_2013.csv row 4 column sagsnr" in r["reason"]


def test_only_a_quarantined_file_is_quarantined(coverage):
    r = coverage[(CODE, "hr_absence", "2013-12")]
    assert r["status"] == "quarantined"
    assert (r["n_loaded"], r["n_quarantined_open"]) == (0, 1)
    assert r["reason"].startswith("sygefravaer_aar_2013.csv row 2 column fravaer_pct")


def test_a_quarantine_replaced_by_a_loaded_correction_is_delivered(coverage):
    r = coverage[(CODE, "hr_absence", "2013-11")]
    assert r["status"] == "delivered"
    assert (r["n_loaded"], r["n_quarantined"], r["n_quarantined_open"]) == (1, 1, 0)
    assert r["reason"] is None


def test_a_held_delivery_is_waiting_with_its_reason(coverage):
    r = coverage[(CODE, "incidents", "2012-12")]
    assert r["status"] == "waiting" and r["n_waiting"] == 1 and r["n_loaded"] == 0
    assert r["reason"].startswith("sagsgennemgang_2012.csv: case review names cases 17, 18")


def test_nothing_after_the_due_day_is_overdue_and_a_wave_not_delivered(coverage):
    overdue = coverage[(CODE, "hr_absence", "2014-01")]
    assert overdue["status"] == "overdue" and overdue["n_files"] == 0
    assert "2014-02-05" in overdue["reason"]
    wave = coverage[(CODE, "survey", "2014-01")]
    assert wave["status"] == "not_delivered" and wave["n_files"] == 0 and wave["reason"] is None


def test_a_source_not_delivered_at_all_is_not_delivered_with_the_config_reason(coverage):
    rows = [r for k, r in coverage.items() if k[:2] == (CODE, "use_of_force")]
    assert {r["period"] for r in rows} == {"2013-11", "2013-12", "2014-01", "2012-12"}
    assert {r["status"] for r in rows} == {"not_delivered"}
    assert {r["source_delivered_by_municipality"] for r in rows} == {False}
    assert all("does not deliver" in r["reason"] for r in rows)


def test_unroutable_files_appear_with_their_reasons(coverage):
    own = coverage[(CODE, "survey", "2013-12")]
    assert own["status"] == "unroutable" and own["n_unroutable"] == 1 and own["n_loaded"] == 0
    assert "ekstra/besvarelser.csv: a sub-folder" in own["reason"]
    unknown = coverage[("(unknown)", "(unknown)", "(unknown)")]
    assert unknown["status"] == "unroutable" and unknown["n_unroutable"] == 2 and unknown["n_files"] == 2
    assert "unknown municipality folder 999" in unknown["reason"]
    assert "unknown municipality folder 998" in unknown["reason"]
    assert unknown["source_delivered_by_municipality"] is None
    period = coverage[(CODE, "hr_absence", "(unknown)")]
    assert period["status"] == "unroutable" and "malformed period folder 2014-3" in period["reason"]


def test_every_status_is_distinct_and_the_grid_is_complete(coverage):
    statuses = {r["status"] for r in coverage.values()}
    assert statuses == {"delivered", "partly_quarantined", "quarantined", "waiting", "overdue", "unroutable",
                        "not_delivered"}
    # 4 sources x 4 periods (3 runs + 2012-12 from a delivery), plus 2 unroutable-only keys
    assert len(coverage) == 4 * 4 + 2
