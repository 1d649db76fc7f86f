"""The real monthly DAG over every sample period, against a real PostgreSQL (the session fixture)."""

from __future__ import annotations

import pytest

from trivsel.config import load_config

pytestmark = pytest.mark.e2e


def test_every_sample_period_ran_green(demo_run):
    assert demo_run, "the sample generators wrote no deliveries"
    failed = {p: rc for p, rc in demo_run.items() if rc != 0}
    assert not failed, f"periods whose DAG run failed: {failed} (logs in $TRIVSEL_HOME/logs)"


def test_no_sample_delivery_was_quarantined(demo_warehouse):
    rows = demo_warehouse.execute(
        "select file_name, reason from audit.delivery where status = 'quarantined'").fetchall()
    assert rows == []


def test_every_sample_file_is_archived_with_its_checksum(demo_warehouse):
    from pathlib import Path

    from trivsel.loading import checksum

    rows = demo_warehouse.execute("select archive_path, checksum_sha256, size_bytes from audit.delivery").fetchall()
    assert rows
    for r in rows:
        digest, size = checksum(Path(r["archive_path"]))
        assert (digest, size) == (r["checksum_sha256"], r["size_bytes"])


def test_coverage_has_every_municipality_source_and_period(demo_warehouse, demo_run):
    n = demo_warehouse.execute("select count(*) as n from marts.delivery_coverage").fetchone()["n"]
    assert n == len(load_config().codes) * 4 * len(demo_run)


def test_odense_sick_leave_is_not_delivered_in_every_period(demo_warehouse, demo_run):
    rows = demo_warehouse.execute(
        "select period, status from marts.delivery_coverage"
        " where municipality_code = '461' and source = 'hr_absence' order by period").fetchall()
    assert [r["period"] for r in rows] == sorted(demo_run)
    assert {r["status"] for r in rows} == {"not_delivered"}


def test_fredericia_use_of_force_is_not_delivered(demo_warehouse):
    rows = demo_warehouse.execute(
        "select distinct status, source_delivered_by_municipality from marts.delivery_coverage"
        " where municipality_code = '607' and source = 'use_of_force'").fetchall()
    assert rows == [{"status": "not_delivered", "source_delivered_by_municipality": False}]


def test_delivered_sources_show_as_delivered(demo_warehouse):
    rows = demo_warehouse.execute(
        "select municipality_code, source, period from marts.delivery_coverage where status = 'delivered'"
    ).fetchall()
    delivered = {(r["municipality_code"], r["source"], r["period"]) for r in rows}
    assert ("607", "survey", "2012-05") in delivered
    assert ("461", "survey", "2013-05") in delivered


def test_the_last_runs_models_read_its_pinned_snapshot(demo_warehouse):
    """The run id reaches dbt in the environment (TRIVSEL_RUN_ID, not a dbt var, so dbt's partial parse survives
    between runs): the staging views the last DAG run built read that run's snapshot of deliveries."""
    last = demo_warehouse.execute("select run_id from audit.run_pin order by pinned_at desc limit 1").fetchone()
    assert last, "no run pinned its deliveries"
    viewdef = demo_warehouse.execute(
        "select pg_get_viewdef('staging.stg_hr_payroll_csv__hr_payroll_absence'::regclass) as sql").fetchone()["sql"]
    assert "run_snapshot" in viewdef and f"'{last['run_id']}'" in viewdef
