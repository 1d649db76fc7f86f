"""The benchmark's own arithmetic (issue 15), without running it: interval unions for Airflow's overhead, the
stage of every task of the current DAG, the target table's verdicts, the loader's timing line, and the history
preload on a throwaway database. No DAG run, no timing asserted."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import psycopg
import pytest

from trivsel.bench import history, run, targets

ROOT = Path(__file__).resolve().parents[2]


def test_union_counts_overlapping_task_windows_once():
    windows = [(0, 10), (5, 12), (20, 25), (24, 30), (40, 40), (31, 33)]
    assert targets.union_seconds(windows) == 12 + 10 + 2
    assert targets.union_seconds([]) == 0
    # the overhead is the wall outside the union, not wall minus the sum (which would go negative here)
    assert targets.overhead_seconds(40, windows) == 40 - 24
    assert targets.overhead_seconds(10, [(0, 8), (1, 9)]) == 1


def test_stage_figures_use_unions_and_the_overhead_outside_every_task():
    res = run.RunResult("2015-12", 0, wall=100.0, started=1000.0, windows=[
        run.Window("ingest (task wall)", 1010, 1050, task=True),
        run.Window("ingest (task wall)", 1020, 1060, task=True),  # a second instance beside the first
        run.Window("dbt", 1070, 1090, task=True),
        run.Window("load to raw", 1012, 1030), run.Window("great expectations", 1025, 1040),
    ])
    st = run.stage_figures(res, input_rows=1000)
    assert st["ingest (task wall)"]["seconds"] == 50 and st["ingest (task wall)"]["busy_seconds"] == 80
    assert st["airflow overhead"]["seconds"] == 100 - 50 - 20
    assert st["whole month"]["seconds"] == 100
    assert run.load_validate_seconds(res) == 28  # 1012..1040, GX overlapping the COPY of another delivery


@pytest.fixture(scope="module")
def dag_task_ids() -> set[str]:
    from airflow.dag_processing.dagbag import DagBag

    from trivsel import dbt_manifest

    dbt_manifest.ensure()
    bag = DagBag(dag_folder=str(ROOT / "dags" / "trivsel_monthly.py"), safe_mode=False)
    assert bag.import_errors == {}
    return set(bag.dags["trivsel_monthly"].task_ids)


def test_every_task_of_the_current_dag_counts_to_a_stage(dag_task_ids):
    unmapped = sorted(t for t in dag_task_ids if run._stage_of(t) not in run.STAGES)
    assert unmapped == [], f"tasks the bench would count to no stage: {unmapped}"
    assert run._stage_of("dbt_models") == "dbt" and "dbt_models" in dag_task_ids
    assert run._stage_of("ingest") == "ingest (task wall)"
    assert run._stage_of("validate") == "great expectations"  # a per-run GX task, if the DAG gets one
    assert run._stage_of("no_such_task") is None


def test_timing_line_with_and_without_its_gx_field():
    with_gx = ("timing 101/hr_absence fravaer_2015-12.csv delivery 7: start 100.000 archive 1.000s load 2.000s "
               "gx 3.000s decide 0.500s rows 10 bytes 99")
    without = with_gx.replace("delivery 7", "delivery 8").replace("gx 3.000s ", "")
    ws = run.timing_windows([with_gx, with_gx, without])  # a repeated line counts once
    by = {(w.stage, w.start) for w in ws}
    assert ("great expectations", 103.0) in by
    assert sum(w.stage == "great expectations" for w in ws) == 1
    assert sum(w.stage == "load to raw" for w in ws) == 2


def _doc(**over) -> dict:
    stage = {"seconds": 100.0}
    scale = {"scale": 1.0, "stages": {"whole month": stage}, "dag": {"mode": "executor"},
             "ratio_load_validate_to_floor": 2.5, "ratio_load_validate_to_peer": 0.4,
             "peer": {"seconds": 25.0}, "peak_rss_mb": 900.0}
    scale.update(over.pop("scale", {}))
    doc = {"scales": [scale], "months": [{"months_loaded_before": 12, "ratio_whole": 1.1, "wall_seconds": 110.0,
                                          "peak_rss_mb": 950.0}], "months_requested": [12, 120]}
    doc.update(over)
    return doc


def _verdicts(doc: dict) -> dict[str, str]:
    return {r.target.split(" (")[0].split(" @")[0]: r.verdict for r in targets.rows(doc)}


def test_target_table_verdicts_from_given_figures():
    v = _verdicts(_doc())
    assert v["whole national month"] == "MET"
    assert v["(load + validate) / bare COPY"] == "MET"
    assert v["trivsel faster than the naive peer"] == "MET"
    assert v["month 13 / month 1"] == "MET"
    assert v["month 121 / month 1"] == "NOT MEASURED"  # requested, not in the document
    assert v["peak memory"] == "MET"
    assert v["time growth per doubling"] == "NOT MEASURED"  # one scale: no doubling

    v = _verdicts(_doc(scale={"stages": {"whole month": {"seconds": 130.0}}, "ratio_load_validate_to_floor": 3.2,
                              "ratio_load_validate_to_peer": 1.3, "peak_rss_mb": 1600.0}))
    assert v["whole national month"] == v["(load + validate) / bare COPY"] == "NOT MET"
    assert v["trivsel faster than the naive peer"] == v["peak memory"] == "NOT MET"


def test_peak_memory_reads_the_trees_pss_when_sampled():
    """Forked task processes share the preloaded modules' pages: the RSS sum counts them per process, PSS once."""
    assert _verdicts(_doc(scale={"peak_rss_mb": 1700.0, "peak_pss_mb": 1200.0}))["peak memory"] == "MET"
    assert _verdicts(_doc(scale={"peak_rss_mb": 1200.0, "peak_pss_mb": 1600.0}))["peak memory"] == "NOT MET"


def test_sampler_takes_the_trees_pss_beside_its_rss():
    import subprocess
    import sys
    import time

    from trivsel.bench.run import Sampler

    child = subprocess.Popen([sys.executable, "-c", "import time; x = bytearray(50 * 2**20); time.sleep(5)"])
    try:
        sampler = Sampler(None)
        sampler.start()
        time.sleep(1.5)
        sampler.stop()
    finally:
        child.kill()
    t, rss, big, pg, pss = sampler.samples[-1]
    assert rss >= 50 * 2**20 and 0 < pss <= rss and pg == 0


def test_growth_targets_from_two_scales_and_the_load_warning():
    half = {"scale": 0.5, "stages": {"whole month": {"seconds": 50.0}}, "dag": {}, "peak_rss_mb": 800.0,
            "ratio_load_validate_to_floor": None}
    doc = _doc()
    doc["scales"] = [half, {**doc["scales"][0], "stages": {"whole month": {"seconds": 120.0}},
                            "peak_rss_mb": 1000.0}]
    v = _verdicts(doc)
    assert v["time growth per doubling"] == "NOT MET"  # 120 / 50 = 2.4x
    assert v["memory growth per doubling"] == "NOT MET"  # 1.25x is not flat
    doc["scales"][1]["stages"]["whole month"]["seconds"] = 100.0
    assert _verdicts(doc)["time growth per doubling"] == "MET"
    doc["scales"][1]["stages"]["whole month"]["seconds"] = 130.0
    assert _verdicts(doc)["time growth per doubling"] == "NOT MET"
    doc["machine"] = {"cpu_count": 2, "load_start": [1.5, 1.0, 0.5], "load_end": [0.2, 0.2, 0.2]}
    assert "WARNING" in targets.header(doc)
    doc["machine"]["load_start"] = [0.3, 0.3, 0.3]
    assert "WARNING" not in targets.header(doc)


def test_growth_per_doubling_counts_the_doublings_between_the_scales():
    # 0.25 -> 1 is two doublings: 4x in time over two is 2x per doubling, not 4x
    assert targets.growth([10.0, 40.0], [0.25, 1.0]) == 2.0
    assert targets.growth([10.0, 20.0, 44.0], [0.5, 1.0, 2.0]) == round((44 / 10) ** 0.5, 2)
    assert targets.growth([10.0, 20.0]) == 2.0  # without scales: consecutive doublings
    assert targets.growth([10.0, None]) is None
    doc = _doc()
    doc["scales"] = [{**doc["scales"][0], "scale": 0.25, "stages": {"whole month": {"seconds": 20.0}}},
                     {**doc["scales"][0], "stages": {"whole month": {"seconds": 90.0}}}]
    assert _verdicts(doc)["time growth per doubling"] == "MET"  # 4.5x over two doublings: 2.12x


#: every target of issue 15, as the table names them (before its first " (" or " @")
ISSUE_TARGETS = ("whole national month", "(load + validate) / bare COPY", "trivsel faster than the naive peer",
                 "month 13 / month 1", "month 121 / month 1", "peak memory", "time growth per doubling",
                 "memory growth per doubling")


def test_table_holds_every_target_of_the_issue_even_from_an_empty_run():
    for doc in ({}, {"scales": [], "months": []}, _doc()):
        rs = targets.rows(doc)
        names = [r.target.split(" (")[0].split(" @")[0] for r in rs]
        assert sorted(names) == sorted(ISSUE_TARGETS), names
        assert {r.verdict for r in rs} <= {"MET", "NOT MET", "NOT MEASURED"}
        text = targets.table(doc)
        assert all(name in text for name in ISSUE_TARGETS)
    assert {r.verdict for r in targets.rows({})} == {"NOT MEASURED"}


def test_history_at_its_own_scale_is_labelled_and_its_month_1_counts_for_memory():
    """--history-scale: month 1 at scale 1 for the absolute targets, months 1, 13 and 121 again at a smaller
    scale for the ratios; each row says its scale, and the history's month 1 is a scale the memory target
    covers."""
    doc = _doc()
    doc["history_base"] = {"scale": 0.1, "stages": {"whole month": {"seconds": 80.0}}, "dag": {},
                           "peak_pss_mb": 1600.0}
    doc["months"] = [{"scale": 0.1, "months_loaded_before": 12, "ratio_whole": 1.1, "wall_seconds": 88.0,
                      "first_wall_seconds": 80.0, "peak_pss_mb": 700.0},
                     {"scale": 0.1, "months_loaded_before": 120, "ratio_whole": 1.5, "wall_seconds": 120.0,
                      "first_wall_seconds": 80.0, "peak_pss_mb": 700.0}]
    rs = {r.target.split(" (")[0]: r for r in targets.rows(doc)}
    assert rs["month 13 / month 1 @0.1"].verdict == "MET"
    assert rs["month 121 / month 1 @0.1"].verdict == "NOT MET"
    assert "month 1 @0.1: 80.0 s" in rs["month 121 / month 1 @0.1"].target
    assert rs["whole national month @1"].verdict == "MET"  # the absolute targets stay at scale 1
    assert rs["peak memory"].verdict == "NOT MET"  # the history's own month 1 peaked above the limit
    # the history's scale is not a scale of the growth target: still one scale, no doubling
    assert rs["time growth per doubling"].verdict == "NOT MEASURED"


def test_history_scale_is_the_one_asked_for_else_scale_1_else_the_first():
    from trivsel.bench.__main__ import history_scale

    assert history_scale([1.0], 0.1) == 0.1
    assert history_scale([0.5, 1.0], None) == 1.0
    assert history_scale([0.5, 2.0], None) == 0.5


def test_catch_up_node_seconds_from_run_results(tmp_path):
    path = tmp_path / "run_results.json"
    path.write_text('{"results": [{"unique_id": "model.trivsel.a", "execution_time": 1.5},'
                    ' {"unique_id": "model.trivsel.b", "execution_time": 9.25}]}')
    assert list(history.node_seconds(path).items()) == [("b", 9.25), ("a", 1.5)]
    assert history.node_seconds(tmp_path / "missing.json") == {}


# ------------------------------------------------------------------------------------------- history preload


@pytest.fixture(scope="module")
def history_db(warehouse_url):
    import throwaway_db

    url = throwaway_db.create(warehouse_url, "bench_history_preload")
    yield url
    throwaway_db.drop(warehouse_url, "bench_history_preload")


def _delivery(conn, code: str, source: str, scheme: str, file_name: str) -> int:
    return conn.execute(
        """insert into audit.delivery (municipality_code, source, scheme, period, file_name, checksum_sha256,
                                       size_bytes, archive_path, status, rows_loaded, run_id)
           values (%s, %s, %s, '2015-12', %s, md5(%s), 1, 'a', 'loaded', 2, 'r') returning delivery_id""",
        (code, source, scheme, file_name, file_name)).fetchone()[0]


def test_history_preload_shifts_periods_dates_and_yearly_sources(history_db):
    with psycopg.connect(history_db, autocommit=True) as conn:
        pay = _delivery(conn, "101", "hr_absence", "hr_payroll_csv", "fravaer_2015-12.csv")
        srv = _delivery(conn, "101", "survey", "survey_respondent_csv", "besvarelser_101_2015-12.csv")
        inc = _delivery(conn, "101", "incidents", "ohs_registry_export", "arbejdsskader_2015.csv")
        conn.execute("""insert into raw.hr_payroll_absence (delivery_id, municipality_code, period, source_row,
                        employee_pseudonym, month_start) values (%s, '101', '2015-12', 2, 'e1', '2015-12-01'),
                        (%s, '101', '2015-12', 3, 'e2', '2015-12-01')""", (pay, pay))
        conn.execute("""insert into raw.survey_response_csv (delivery_id, municipality_code, period, source_row,
                        respondent_id, wave, answers) values (%s, '101', '2015-12', 2, '1010000001', '2015-12',
                        '{"q1": "Altid"}')""", (srv,))
        conn.execute("""insert into raw.ohs_registration (delivery_id, municipality_code, period, source_row,
                        case_id, event_date) values (%s, '101', '2015-12', 2, 'AS-2015-00001', '2015-03-04')""",
                     (inc,))
        out = history.preload(conn, "2015-12", [1, 2, 12])
        assert out["deliveries"] == 3 + 2  # payroll in every month; survey and incidents a year on only
        assert out["raw_rows"] == {"hr_payroll_absence": 6, "survey_response_csv": 1, "ohs_registration": 1}
        got = conn.execute("""select d.period, d.status, d.run_id, r.month_start from audit.delivery d
                                join raw.hr_payroll_absence r using (delivery_id)
                               where d.run_id = %s and r.employee_pseudonym = 'e1' order by 1""",
                           (history.HISTORY_RUN_ID,)).fetchall()
        assert got == [("2016-01", "loaded", history.HISTORY_RUN_ID, dt.date(2016, 1, 1)),
                       ("2016-02", "loaded", history.HISTORY_RUN_ID, dt.date(2016, 2, 1)),
                       ("2016-12", "loaded", history.HISTORY_RUN_ID, dt.date(2016, 12, 1))]
        assert conn.execute("select wave, r.period, answers from raw.survey_response_csv r join audit.delivery d"
                            " using (delivery_id) where d.period = '2016-12'").fetchone() \
            == ("2016-12", "2016-12", {"q1": "Altid"})
        assert conn.execute("select case_id, event_date, d.file_name from raw.ohs_registration r"
                            " join audit.delivery d using (delivery_id) where d.period = '2016-12'").fetchone() \
            == ("AS-2016-00001", dt.date(2016, 3, 4), "arbejdsskader_2016.csv")
        # every copy is a delivery of its own (distinct checksums), the originals untouched
        assert conn.execute("select count(distinct checksum_sha256), count(*) from audit.delivery").fetchone() \
            == (8, 8)
        assert conn.execute("select count(*) from raw.hr_payroll_absence where delivery_id = %s", (pay,)).fetchone() \
            == (2,)
        assert history.history_rows(conn) == {"loaded_deliveries": 8, "periods": 4, "raw_rows": 4 + 6 + 2}


def test_catch_up_statistics_runs_every_domain_as_the_dag_task_does(monkeypatch):
    """The history's catch-up runs each statistics domain once through the DAG task's own function, under the
    history's run id, so the measured month starts from the kept state a monthly run would have left."""
    from trivsel import pipeline

    calls = []
    monkeypatch.setattr(pipeline, "run_statistics", lambda domain, run_id=None: calls.append((domain, run_id)) or 7)
    out = history.catch_up_statistics()
    assert calls == [(d, history.HISTORY_RUN_ID) for d in pipeline.STAT_DOMAINS]
    assert {d: v["rows"] for d, v in out["domains"].items()} == {d: 7 for d in pipeline.STAT_DOMAINS}


def test_settle_vacuums_and_analyzes_what_the_preload_wrote(history_db):
    """After the preload and the catch-ups the history's tables are vacuumed and analyzed before the measured
    month (history.settle), so autovacuum does not work through them during it: a freshly filled table has
    been neither vacuumed nor analyzed before, and both after."""
    with psycopg.connect(history_db, autocommit=True) as conn:
        conn.execute("create table public.bench_settle_probe (id int, v text)")
        conn.execute("insert into public.bench_settle_probe select g, md5(g::text) from generate_series(1, 5000) g")

        def state() -> tuple:
            conn.execute("select pg_stat_clear_snapshot()")
            return conn.execute(
                """select s.last_vacuum is not null,
                          exists (select 1 from pg_stats where schemaname = 'public' and tablename = 'bench_settle_probe')
                   from pg_stat_user_tables s
                   where s.relname = 'bench_settle_probe'""").fetchone()

        assert state() == (False, False)
        out = history.settle(conn)
        assert state() == (True, True)
        assert out["seconds"] >= 0
        conn.execute("drop table public.bench_settle_probe")
