"""The DAG's split of ingest and validation (trivsel.loading.validating): an ingest lane parses and COPYs each
municipality's files (validate=False), the run's one validate task validates every parsed delivery at once and decides each,
and the mapped verdict[code] fails only the municipality whose delivery validation quarantined.

Deliveries go through a throwaway database of the session's server, no DAG run: the task functions are
called as the tasks call them."""

from __future__ import annotations

import psycopg
import pytest
import throwaway_db

from trivsel import pipeline, upstream, verdict

DB = "validate_task"
PERIOD = "2014-05"
HEADER = "Medarbejdernr;Enhed;Måned;Fraværskode;Fraværstekst;Fraværstimer;Normtimer;Årsværk"


@pytest.fixture(scope="module")
def env(warehouse_url, tmp_path_factory, monkeypatch_module):
    monkeypatch_module.setenv("TRIVSEL_PSEUDONYM_KEY", "validate-task-test-key-not-a-secret-0123")
    yield from throwaway_db.loader_env(warehouse_url, DB, tmp_path_factory, monkeypatch_module)


def _drop(env, name: str, text: str = "Egen sygdom", period: str = PERIOD) -> None:
    """Three payroll rows; the second one's Fraværstekst is `text`."""
    folder = env["inbox"] / "169" / "hr_absence" / period
    folder.mkdir(parents=True, exist_ok=True)
    lines = [HEADER] + [f"{101000 + i};VV fløj A;{period};SYG;{text if i == 1 else 'Egen sygdom'};7,40;160,33;1,00"
                        for i in range(3)]
    (folder / name).write_bytes(("\r\n".join(lines) + "\r\n").encode("cp1252"))


def _status(env, run_id: str) -> dict[str, tuple[str, int | None]]:
    with psycopg.connect(env["url"]) as conn:
        return {n: (s, r) for n, s, r in conn.execute(
            "select file_name, status, rows_loaded from audit.delivery where run_id = %s", (run_id,))}


@pytest.fixture
def stricter_suite(monkeypatch):
    """The payroll suite plus one check the parser does not make (the parser catches every error in the
    suite itself first): a Fraværstekst 'Forkert' fails validation only."""
    from trivsel import validation

    real = validation._suite_spec
    extra = {"type": "expect_column_values_to_not_be_in_set",
             "kwargs": {"column": "absence_text", "value_set": ["Forkert"]}}

    def spec(table):
        s = real(table)
        return {**s, "expectations": [*s["expectations"], extra]} if table == "hr_payroll_absence" else s

    monkeypatch.setattr(validation, "_suite_spec", spec)


def test_ingest_leaves_parsed_deliveries_for_the_one_validate_task(env, caplog, stricter_suite):
    _drop(env, "fravaer_2014-05.csv")
    _drop(env, "fravaer_2014-05_b.csv", text="Forkert")
    out = pipeline.ingest("169", PERIOD, "run-a", validate=False)
    assert sorted(o["status"] for o in out) == ["validating", "validating"], out
    assert {s for s, _r in _status(env, "run-a").values()} == {"validating"}
    assert all(r == 3 for _s, r in _status(env, "run-a").values())
    with caplog.at_level("INFO", logger="trivsel"):
        failed = pipeline.validate({"codes": ["169", "461"], "periods": [PERIOD]}, "run-a")
    assert set(failed) == {"169", "461"} and failed["461"] == []
    [line] = failed["169"]
    assert "fravaer_2014-05_b.csv" in line and "quarantined" in line
    assert _status(env, "run-a") == {"fravaer_2014-05.csv": ("loaded", 3), "fravaer_2014-05_b.csv": ("quarantined", 0)}
    with psycopg.connect(env["url"]) as conn:
        [(row, column, check, reason)] = conn.execute(
            "select i.row_number, i.column_name, i.check_name, i.reason from quarantine.delivery_issue i"
            " join audit.delivery d using (delivery_id) where d.file_name = 'fravaer_2014-05_b.csv'").fetchall()
    assert (column, check) == ("absence_text", "gx:expect_column_values_to_not_be_in_set")
    assert row == 3 and "101001" not in reason and "1 unexpected value(s)" in reason
    assert any(r.getMessage().startswith("timing validate hr_payroll_absence deliveries 2 rows 6 gx ")
               for r in caplog.records), [r.getMessage() for r in caplog.records if "timing" in r.getMessage()]
    # verdict[code]: only the quarantined municipality gets one, and it fails (no retry); the other would pass
    assert verdict.to_judge(["169", "461"], failed, {}, {}) == ["169"]
    with pytest.raises(verdict.MunicipalityFailed, match=r"(?s)1 deliveries failed validation.*fravaer_2014-05_b"):
        verdict.decide("169", failed, {}, {})
    assert "passed validation" in verdict.decide("461", failed, {}, {})
    # a retry of the validate task has nothing left to validate, and still names the quarantine
    assert pipeline.validate({"codes": ["169", "461"], "periods": [PERIOD]}, "run-a")["169"] == [line]


def test_a_crashed_validate_leaves_deliveries_the_next_ingest_takes_again(env):
    _drop(env, "fravaer_2014-06.csv", period="2014-06")
    pipeline.ingest("169", "2014-06", "run-crashed", validate=False)  # ... and the validate task never ran
    assert _status(env, "run-crashed") == {"fravaer_2014-06.csv": ("validating", 3)}
    # the next run's ingest; Airflow says run-crashed is no longer running (failed)
    out = pipeline.ingest("169", "2014-06", "run-next", run_is_live=lambda run: False)
    assert [o["status"] for o in out] == ["loaded"], out
    assert _status(env, "run-crashed")["fravaer_2014-06.csv"][0] == "quarantined"  # 'interrupted', retaken
    assert _status(env, "run-next") == {"fravaer_2014-06.csv": ("loaded", 3)}


def test_another_running_runs_parsed_delivery_is_left_to_its_validate_task(env):
    """Two runs of one period at once: the second's ingest finds the first's parsed delivery awaiting its
    validate task. It neither cleans it up as interrupted nor loads the file a second time."""
    _drop(env, "fravaer_2014-07.csv", period="2014-07")
    pipeline.ingest("169", "2014-07", "run-first", validate=False)
    for live in (lambda run: True, None):  # Airflow says running; or another installation's run, recent
        out = pipeline.ingest("169", "2014-07", "run-second", validate=False, run_is_live=live)
        assert [o["status"] for o in out] == ["unchanged"], out
        assert _status(env, "run-first") == {"fravaer_2014-07.csv": ("validating", 3)}
        assert _status(env, "run-second") == {}
    pipeline.validate({"codes": ["169"], "periods": ["2014-07"]}, "run-second")  # nothing of its own
    assert _status(env, "run-first") == {"fravaer_2014-07.csv": ("validating", 3)}
    pipeline.validate({"codes": ["169"], "periods": ["2014-07"]}, "run-first")
    assert _status(env, "run-first") == {"fravaer_2014-07.csv": ("loaded", 3)}


def test_an_unknown_runs_pending_delivery_older_than_the_lease_is_taken_again(env):
    _drop(env, "fravaer_2014-08.csv", period="2014-08")
    pipeline.ingest("169", "2014-08", "run-elsewhere", validate=False)
    with psycopg.connect(env["url"], autocommit=True) as conn:  # it was parsed three hours ago
        conn.execute("update audit.delivery set received_at = now() - interval '3 hours' where run_id = %s",
                     ("run-elsewhere",))
    out = pipeline.ingest("169", "2014-08", "run-later", run_is_live=lambda run: None)
    assert [o["status"] for o in out] == ["loaded"], out
    assert _status(env, "run-elsewhere")["fravaer_2014-08.csv"][0] == "quarantined"


def test_certify_tolerates_a_verdict_failed_on_quarantined_deliveries():
    jobs = [{"code": "169", "period": PERIOD}, {"code": "461", "period": PERIOD}]
    # verdict is mapped over findings' list: 169 only
    states = {"validate": "success", "findings": "success", "verdict_0": "failed"}
    results = [{"status": "success", "unique_id": "model.x", "task_id": "dbt_models", "message": "",
                "resource_type": "model"}]
    assert upstream.measure(states, results, jobs, {("169", PERIOD)}, judged=["169"])["passed"]
    # the same failure without a quarantine (a crash) blocks
    check = upstream.measure(states, results, jobs, set(), judged=["169"])
    assert not check["passed"] and "verdict[169]" in check["reason"]


def test_a_gate_waits_for_another_running_runs_parsed_deliveries(env):
    """The second run's gate pins only after the first run's validate task decided the file it parsed, so
    both runs build from the same loaded deliveries; a run Airflow reports as ended is not waited for."""
    import threading

    from trivsel import loading

    _drop(env, "fravaer_2014-09.csv", period="2014-09")
    pipeline.ingest("169", "2014-09", "run-parsing", validate=False)
    with psycopg.connect(env["url"], autocommit=True) as conn:
        loading.wait_for_other_runs(conn, "run-gate", run_is_live=lambda run: False, poll_seconds=0.05)  # returns
        done = threading.Event()
        t = threading.Thread(target=lambda: (loading.wait_for_other_runs(
            conn, "run-gate", run_is_live=lambda run: True, poll_seconds=0.05), done.set()))
        t.start()
        assert not done.wait(1.0), "the gate did not wait for the other run's validate task"
        pipeline.validate({"codes": ["169"], "periods": ["2014-09"]}, "run-parsing")
        assert done.wait(30), "the gate still waits after the other run decided its deliveries"
        t.join(5)
    assert _status(env, "run-parsing") == {"fravaer_2014-09.csv": ("loaded", 3)}
