"""A run is certified from what it measured, from one snapshot of deliveries, and says when it left a
municipality out (issue 14: "certification that measures", "concurrency-safe by construction", the empty
month, the run's final state). Each test has a warehouse database of its own (`wh`), and runs real dbt and
the real loader where the behaviour depends on them.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from types import SimpleNamespace

import psycopg
import pytest

from trivsel import build_lease, certify, loading, pipeline, snapshot, upstream

PAYROLL = "169/hr_absence/2014-01/fravaer_2014-01.csv"
PAYROLL_LATER = "169/hr_absence/2014-02/fravaer_2014-02.csv"
STAGING_PAYROLL = "stg_hr_payroll_csv__hr_payroll_absence"
JOBS = [{"code": "169", "period": "2014-01"}, {"code": "461", "period": "2014-01"}]
#: the lanes task's list: ingest_0 loads 169, ingest_1 loads 461 (trivsel.lanes)
LANES = [{"label": "169 Høje-Taastrup 2014-01", "jobs": [{"code": "169", "name": "", "period": "2014-01"}]},
         {"label": "461 Odense 2014-01", "jobs": [{"code": "461", "name": "", "period": "2014-01"}]}]
ALL_OK = {"plan": "success", "loads_done": "success", "dbt_seeds": "success", "dbt_staging": "success",
          "quality_gate": "success", "dbt_models": "success", "ingest_0": "success",
          "ingest_1": "success", "significance_tests_0": "success", "findings": "success",
          "verdict": "skipped"}  # no municipality had a finding: the mapped verdict expanded to nothing
PASSED_TEST = {"task_id": "dbt_staging", "map_index": -1, "unique_id": "test.trivsel.not_null_x", "resource_type":
               "test", "status": "pass", "failures": 0, "message": None}


def _delivery(conn, code: str, period: str, status: str, digest: str, source: str = "hr_absence",
              reason: str | None = None, run_id: str | None = None, name: str | None = None) -> int:
    return conn.execute(
        "insert into audit.delivery (municipality_code, source, scheme, period, file_name, checksum_sha256,"
        " size_bytes, archive_path, status, reason, run_id)"
        " values (%s, %s, 'hr_payroll_csv', %s, %s, %s, 1, '/a', %s, %s, %s) returning delivery_id",
        (code, source, period, name or f"{digest}.csv", digest, status, reason, run_id)).fetchone()[0]


def _dbt(args: list[str], tmp, run_id: str | None = None) -> tuple[int, str]:
    target = tmp / "target"
    extra = ["--vars", json.dumps({"run_id": run_id})] if run_id else []
    return certify._dbt([*args, *extra], target)


def _certified_state(conn) -> dict[str, int]:
    tables = [r[0] for r in conn.execute(
        "select table_name from information_schema.tables where table_schema = 'certified'"
        " and table_name <> 'publication_log'")]
    return {t: conn.execute(f'select count(*) from certified."{t}"').fetchone()[0] for t in tables}


# ------------------------------------------------------------------ measuring the upstream


def test_all_green_upstream_passes_and_records_what_it_read():
    check = upstream.measure(ALL_OK, [PASSED_TEST], JOBS, set(), judged=[], lanes=LANES)
    assert check["passed"], check
    assert check["task_states"]["ingest[169 Høje-Taastrup 2014-01]"] == "success"
    assert check["tolerated"] == ["verdict: skipped (no municipality had a finding: nothing to judge)"]
    assert check["dbt_results_by_status"] == {"pass": 1} and check["dbt_tests"] == 1


@pytest.mark.parametrize("task", ["dbt_staging", "dbt_models", "significance_tests_0",
                                  "loads_done", "quality_gate", "findings"])
def test_an_upstream_task_that_did_not_succeed_refuses(task):
    check = upstream.measure({**ALL_OK, task: "upstream_failed" if task.startswith("sig") else "failed"},
                             [PASSED_TEST], JOBS, set())
    assert not check["passed"]
    assert task in check["reason"]


def test_a_failed_ingest_lane_blocks_even_beside_a_quarantine():
    """A lane does not fail for one municipality's data (it records a quarantine or an error and goes on:
    pipeline.ingest_lane), so a failed lane is infrastructure: it blocks, whatever its municipalities' deliveries
    say, and certify names it by its lane's label."""
    states = {**ALL_OK, "ingest_1": "failed"}
    for quarantined in (set(), {("461", "2014-01")}):
        check = upstream.measure(states, [PASSED_TEST], JOBS, quarantined, excused={"461"}, lanes=LANES)
        assert not check["passed"] and "task ingest[461 Odense 2014-01] is failed" in check["reason"], check
    unnamed = upstream.measure(states, [PASSED_TEST], JOBS, set(), lanes=None)
    assert not unnamed["passed"] and "task ingest_1 is failed" in unnamed["reason"]


def test_a_verdict_failed_on_a_failed_pull_or_a_hold_does_not_block_but_a_crashed_one_does():
    """verdict is mapped over the findings task's list (461, 607 of the plan's 169, 461, 607): verdict_0 is
    461's. verdict[461] failed and 461's pull failed, its deliveries were held or its lane recorded an ingest
    finding (excused): tolerated;
    verdict[607] not run yet (a leaf certify does not wait for): tolerated; a verdict failed for no reason
    the run knows (a crash) blocks, and so does one that cannot be named (findings gave no list)."""
    jobs = [*JOBS, {"code": "607", "period": "2014-01"}]
    base = {k: v for k, v in ALL_OK.items() if k != "verdict"}
    states = {**base, "ingest_2": "success", "verdict_0": "failed", "verdict_1": "queued"}
    check = upstream.measure(states, [PASSED_TEST], jobs, set(), excused={"461"}, judged=["461", "607"])
    assert check["passed"] and len(check["tolerated"]) == 2, check
    assert any(t.startswith("verdict[461]: failed") for t in check["tolerated"])
    assert any(t.startswith("verdict[607]: queued") for t in check["tolerated"])
    # 169 is excused, but verdict_0 is not 169's: its map index is in findings' list, not in the plan's
    crashed = upstream.measure(states, [PASSED_TEST], jobs, set(), excused={"169"}, judged=["461", "607"])
    assert not crashed["passed"] and "task verdict[461] is failed" in crashed["reason"]
    unnamed = upstream.measure(states, [PASSED_TEST], jobs, set(), excused={"461"}, judged=None)
    assert not unnamed["passed"] and "task verdict_0 is failed" in unnamed["reason"]


def test_no_recorded_dbt_result_refuses():
    check = upstream.measure(ALL_OK, [], JOBS, set())
    assert not check["passed"] and "no dbt results" in check["reason"]


def test_the_last_try_of_a_retried_dbt_task_counts(wh):
    row = ("run-r", "dbt_models", -1)
    upstream.store(wh.conn, [(*row, 1, "test.trivsel.t", "test", "fail", 3, "Got 3 results"),
                             (*row, 2, "test.trivsel.t", "test", "pass", 0, None),
                             ("run-r", "dbt_staging", -1, 1, "model.trivsel.s", "model", "success", None, None)])
    results = upstream.dbt_results(wh.conn, "run-r")
    assert sorted((r["unique_id"], r["status"]) for r in results) == [("model.trivsel.s", "success"),
                                                                      ("test.trivsel.t", "pass")]
    assert upstream.measure(ALL_OK, results, JOBS, set())["passed"]
    upstream.store(wh.conn, [(*row, 3, "test.trivsel.t", "test", "fail", 2, "Got 2 results")])
    assert not upstream.measure(ALL_OK, upstream.dbt_results(wh.conn, "run-r"), JOBS, set())["passed"]


# ------------------------------------------------------------------ a real dbt test fails: nothing published


def test_a_failing_dbt_test_is_recorded_and_nothing_is_published(wh, sample_root, tmp_path, caplog):
    """A payroll row loses its unit between load and models: dbt's not_null test on the staging model fails.
    The Cosmos callback records dbt's run results; certify measures them and refuses: no certified table
    changes, publication_log records the refusal, and the log names the failing test."""
    run_id = "manual__forced-test-failure"
    wh.copy_sample(sample_root, PAYROLL)
    loaded = loading.ingest_municipality("169", "2014-01", run_id)[0]
    assert loaded.status == "loaded", loaded.line()
    wh.conn.execute("update raw.hr_payroll_absence set unit_text = null where delivery_id = %s and source_row ="
                    " (select min(source_row) from raw.hr_payroll_absence)", (loaded.delivery_id,))
    pipeline.loads_done("2014-01", run_id)
    wh.conn.execute("create table certified.survey_item_change (x integer)")
    wh.conn.execute("insert into certified.survey_item_change values (1), (2)")
    before = _certified_state(wh.conn)

    rc, out = _dbt(["build", "--select", STAGING_PAYROLL, "--exclude", "test_name:relationships",
                    "tag:per_municipality"], tmp_path, run_id)
    assert rc != 0, out
    ti = SimpleNamespace(task_id="dbt_staging", map_index=-1, try_number=1)
    assert upstream.record_dbt_results(tmp_path, context={"ti": ti, "run_id": run_id}) >= 2
    recorded = upstream.dbt_results(wh.conn, run_id)
    failed = [r["unique_id"].split(".")[2] for r in recorded if r["status"] == "fail"]
    assert failed == [f"not_null_{STAGING_PAYROLL}_unit_text"], recorded
    assert any(r["status"] == "pass" for r in recorded), "the other tests ran and passed"

    measured = upstream.measure(ALL_OK, recorded, JOBS, set())
    assert not measured["passed"]
    with caplog.at_level(logging.ERROR, logger="trivsel.certify"), pytest.raises(certify.CertificationFailed):
        certify.certify("2014-01", run_id, dbt_tests=measured)
    assert _certified_state(wh.conn) == before, "a refusal changes no certified table"
    assert not wh.conn.execute("select 1 from pg_namespace where nspname = 'certified_next'").fetchone()
    log_rows = wh.conn.execute("select outcome, run_id, refusal_reason, upstream, checks"
                               " from certified.publication_log").fetchall()
    assert len(log_rows) == 1
    outcome, logged_run, reason, measured_logged, checks = log_rows[0]
    assert (outcome, logged_run) == ("refused", run_id)
    assert f"not_null_{STAGING_PAYROLL}_unit_text" in reason
    assert measured_logged["passed"] is False and checks["deliveries"]["passed"] is True
    assert any("publication refused" in r.message and f"not_null_{STAGING_PAYROLL}_unit_text" in r.message
               for r in caplog.records), [r.message for r in caplog.records]


# ------------------------------------------------------------------ the empty month


def test_a_month_without_deliveries_publishes_nothing(wh, caplog):
    _delivery(wh.conn, "169", "2014-01", "loaded", "a")  # another month has data
    with caplog.at_level(logging.WARNING, logger="trivsel.certify"):
        out = certify.certify("2031-05", "scheduled__2031-06-05T06:00:00+00:00",
                              dbt_tests={"passed": True, "what": "test"})
    assert out["published"] is False and "2031-05" in out["reason"]
    assert wh.conn.execute("select to_regclass('certified.publication_log')").fetchone()[0] is None
    assert any("no certified version is published" in r.message for r in caplog.records)


def test_a_month_with_only_a_quarantined_delivery_is_not_empty(wh):
    _delivery(wh.conn, "169", "2014-03", "quarantined", "q")
    assert certify.has_deliveries(wh.conn, ["2014-03"])
    assert not certify.has_deliveries(wh.conn, ["2014-04"])


# ------------------------------------------------------------------ the snapshot pinned at the gate


def _staging_deliveries(conn) -> set[int]:
    return {r[0] for r in conn.execute(f"select distinct delivery_id from staging.{STAGING_PAYROLL}")}


def test_a_delivery_committed_after_the_gate_waits_for_the_next_run(wh, sample_root, tmp_path):
    wh.copy_sample(sample_root, PAYROLL)
    first = loading.ingest_municipality("169", "2014-01", "run-a")[0]
    assert first.status == "loaded", first.line()
    pipeline.loads_done("2014-01", "run-a")  # the gate of run a

    wh.copy_sample(sample_root, PAYROLL_LATER)  # committed while run a's dbt tasks run
    late = loading.ingest_municipality("169", "2014-02", "run-late")[0]
    assert late.status == "loaded", late.line()

    rc, out = _dbt(["run", "--select", STAGING_PAYROLL], tmp_path, "run-a")
    assert rc == 0, out
    assert _staging_deliveries(wh.conn) == {first.delivery_id}, "run a's models read run a's snapshot only"

    pipeline.release_build("run-a", "run_outcome")  # run a ends (its run_outcome releases the build lease)
    pipeline.loads_done("2014-02", "run-b")  # the next run pins it
    rc, out = _dbt(["run", "--select", STAGING_PAYROLL], tmp_path, "run-b")
    assert rc == 0, out
    assert _staging_deliveries(wh.conn) == {first.delivery_id, late.delivery_id}

    rc, out = _dbt(["run", "--select", STAGING_PAYROLL], tmp_path)  # without a run: audit.delivery live
    assert rc == 0, out
    assert _staging_deliveries(wh.conn) == {first.delivery_id, late.delivery_id}


def test_a_retried_gate_keeps_its_first_pin(wh):
    a = _delivery(wh.conn, "169", "2014-01", "loaded", "a")
    first = snapshot.pin(wh.conn, "run-x")
    _delivery(wh.conn, "461", "2014-01", "loaded", "b")
    again = snapshot.pin(wh.conn, "run-x")
    assert (first["loaded"], again["loaded"]) == (1, 1)
    assert snapshot.loaded_ids(wh.conn, "run-x") == {a}


def test_a_supersession_after_the_gate_does_not_change_the_run(wh):
    """A correction loaded mid-run supersedes the version the run pinned: the run still builds from the
    version it pinned (one consistent set), the next run from the correction."""
    old = _delivery(wh.conn, "169", "2014-01", "loaded", "a")
    snapshot.pin(wh.conn, "run-1")
    with wh.conn.transaction():
        wh.conn.execute("update audit.delivery set status = 'superseded' where delivery_id = %s", (old,))
        new = _delivery(wh.conn, "169", "2014-01", "loaded", "b")
    snapshot.pin(wh.conn, "run-2")
    assert snapshot.loaded_ids(wh.conn, "run-1") == {old}
    assert snapshot.loaded_ids(wh.conn, "run-2") == {new}


def test_a_held_delivery_leaves_the_runs_snapshot(wh):
    did = _delivery(wh.conn, "607", "2014-01", "loaded", "h")
    snapshot.pin(wh.conn, "run-h")
    snapshot.hold(wh.conn, "run-h", did, "held by the quality gate (run run-h): test")
    assert snapshot.loaded_ids(wh.conn, "run-h") == set()


# ------------------------------------------------------------------ two runs of one period at once


def test_two_runs_of_one_period_at_once_build_from_one_loaded_version(wh, sample_root, tmp_path, monkeypatch):
    """Two runs ingest the same corrected re-delivery of one key and reach their gates at the same moment, as
    two DAG runs would. One loads it, the other finds it unchanged; the build lease lets one run's gate pin and
    build while the other waits; both snapshots hold the one loaded version per key, so the models either run
    builds are the same. (tests/reliability/test_concurrent_runs_e2e.py does this with two real DAG runs.)"""
    monkeypatch.setattr(build_lease, "DEFAULT_POLL_SECONDS", 0.2)
    original = wh.copy_sample(sample_root, PAYROLL)
    assert loading.ingest_municipality("169", "2014-01", "run-0")[0].status == "loaded"
    original.write_bytes(b"".join(original.read_bytes().splitlines(keepends=True)[:-1]))  # the correction

    barrier = threading.Barrier(2)
    outcomes: dict[str, list] = {}
    errors: list[BaseException] = []

    built: dict[str, tuple] = {}
    windows: dict[str, tuple[float, float]] = {}

    def run(run_id: str) -> None:
        try:
            barrier.wait()
            outcomes[run_id] = pipeline_ingest(run_id)
            pipeline.loads_done("2014-01", run_id)  # waits while the other run holds the build lease
            started = time.monotonic()
            rc, out = _dbt(["run", "--select", STAGING_PAYROLL], tmp_path / run_id, run_id)
            assert rc == 0, out
            with psycopg.connect(wh.url) as c:
                built[run_id] = c.execute(f"select count(*), md5(string_agg(t::text, '|' order by t::text))"
                                          f" from staging.{STAGING_PAYROLL} as t").fetchone()
            windows[run_id] = (started, time.monotonic())
            assert pipeline.release_build(run_id, "run_outcome")
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    def pipeline_ingest(run_id: str):
        return [o.status for o in loading.ingest_municipality("169", "2014-01", run_id)]

    threads = [threading.Thread(target=run, args=(r,)) for r in ("run-1", "run-2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not errors, errors
    assert sorted(s for st in outcomes.values() for s in st) == ["loaded", "unchanged"], outcomes
    loaded = [r[0] for r in wh.conn.execute(
        "select delivery_id from audit.delivery where municipality_code = '169' and period = '2014-01'"
        " and status = 'loaded'")]
    assert len(loaded) == 1, "one loaded version per key"
    assert snapshot.loaded_ids(wh.conn, "run-1") == snapshot.loaded_ids(wh.conn, "run-2") == set(loaded)

    (a_start, a_end), (b_start, b_end) = sorted(windows.values())
    assert b_start >= a_end, "the two runs' model builds overlapped"
    assert built["run-1"] == built["run-2"] and built["run-1"][0] == len(original.read_bytes().splitlines()) - 1


# ------------------------------------------------------------------ the run's final state


def test_run_outcome_names_quarantined_and_held_municipalities(wh):
    p = {"periods": ["2014-01"], "codes": ["169", "461", "607"]}
    ok = {"certify": "success", "publish": "success"}
    assert "were published" in pipeline.outcome(p, "run-o", ok)
    _delivery(wh.conn, "461", "2014-01", "quarantined", "q")
    _delivery(wh.conn, "607", "2014-01", "waiting", "w",
              reason="held by the quality gate (run run-o): dbt test x fails on 2 rows")
    _delivery(wh.conn, "169", "2014-01", "waiting", "p", reason="waiting for its partner delivery")
    with pytest.raises(pipeline.MunicipalitiesNotPublished) as err:
        pipeline.outcome(p, "run-o", ok)
    text = str(err.value)
    assert "461, 607" in text and "q.csv" in text and "w.csv" in text and "169/" not in text


def test_a_quarantine_replaced_by_a_loaded_correction_is_not_reported(wh):
    p = {"periods": ["2014-01"], "codes": ["461"]}
    _delivery(wh.conn, "461", "2014-01", "quarantined", "q", run_id="run-1")
    _delivery(wh.conn, "461", "2014-01", "loaded", "fixed", run_id="run-2")  # the correction, a later run
    assert "were published" in pipeline.outcome(p, "run-o", {"certify": "success", "publish": "success"})


def test_a_quarantined_correction_is_reported_whatever_the_file_order_in_its_run(wh):
    """A corrupt `rettelse_…` sorts before the original it should correct: the original loads after it, in the
    same run. The municipality's correction was still rejected: the run's verdict names it."""
    p = {"periods": ["2014-01"], "codes": ["607"]}
    _delivery(wh.conn, "607", "2014-01", "quarantined", "bad", run_id="run-o", name="rettelse_2014-01.xlsx")
    _delivery(wh.conn, "607", "2014-01", "loaded", "good", run_id="run-o", name="sygefravaer_2014-01.xlsx")
    with pytest.raises(pipeline.MunicipalitiesNotPublished) as err:
        pipeline.outcome(p, "run-o", {"certify": "success", "publish": "success"})
    assert "607" in str(err.value) and "rettelse_2014-01.xlsx" in str(err.value)
    # the next run of the period still finds it standing, until a correction comes
    with pytest.raises(pipeline.MunicipalitiesNotPublished):
        pipeline.outcome(p, "run-next", {"certify": "success", "publish": "success"})
    _delivery(wh.conn, "607", "2014-01", "superseded", "fixed", run_id="run-later", name="rettelse_2014-01.xlsx")
    assert "were published" in pipeline.outcome(p, "run-later", {"certify": "success", "publish": "success"})


def test_an_interrupted_load_taken_again_in_its_run_is_not_reported(wh):
    """A warehouse restart mid-load: cleanup_interrupted quarantines the file ('interrupted'), the retry of
    the same run loads the same file (same checksum): an infrastructure error, not the municipality's."""
    p = {"periods": ["2014-01"], "codes": ["169"]}
    _delivery(wh.conn, "169", "2014-01", "quarantined", "same", run_id="run-o",
              reason="interrupted load: the delivery was still validating when run run-o started")
    _delivery(wh.conn, "169", "2014-01", "loaded", "same", run_id="run-o")
    assert "were published" in pipeline.outcome(p, "run-o", {"certify": "success", "publish": "success"})


def test_run_outcome_fails_a_run_whose_certification_was_refused(wh):
    p = {"periods": ["2014-01"], "codes": ["169"]}
    with pytest.raises(pipeline.MunicipalitiesNotPublished, match="certify is failed; publish is upstream_failed"):
        pipeline.outcome(p, "run-o", {"certify": "failed", "publish": "upstream_failed"})


def test_run_outcome_is_a_data_error_without_retries():
    from airflow.sdk.exceptions import AirflowFailException

    assert issubclass(pipeline.MunicipalitiesNotPublished, AirflowFailException)
