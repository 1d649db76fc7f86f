"""The ingest's lanes (trivsel.lanes, pipeline.ingest_lane): the split of a run's jobs into a few task instances,
and the isolation of one municipality's failure inside a lane.

- split: every (municipality, period) job in exactly one lane, a municipality's periods together and in order,
  never an empty lane, balanced by inbox bytes (largest first into the lightest lane), a label within
  Airflow's 250 characters.
- isolation, on a warehouse of its own: a lane of three municipalities where one file cannot be parsed (169)
  and one municipality's load raises an unexpected error that quotes an employee number (607): the lane goes
  on, stays green and records both (audit.ingest_failure, the error masked); findings, the verdict, certify's
  excuses and run_outcome read them. A lost warehouse connection fails the lane (the DAG's retry), and the
  retry finds the deliveries its first attempt parsed whole `unchanged` (trivsel.loading.decision
  .cleanup_interrupted keeps the run's own), so only the rest is loaded.
"""

from __future__ import annotations

import random

import psycopg
import pytest

from trivsel import lanes

PERIOD = "2013-12"
REGISTRY = "169/incidents/2013-12/arbejdsskader_2013.csv"
NAMES = {"169": "Høje-Taastrup", "461": "Odense", "607": "Fredericia"}


def _jobs(split: list[dict]) -> list[tuple[str, str]]:
    return [(j["code"], j["period"]) for lane in split for j in lane["jobs"]]


def test_every_job_is_in_one_lane_and_a_municipalitys_periods_stay_together():
    codes = [str(100 + i) for i in range(98)]
    periods = ["2013-11", "2013-12", "2014-01"]
    weights = {c: (i * 7919) % 1000 for i, c in enumerate(codes)}
    split = lanes.split(codes, periods, {}, 4, weights)
    assert len(split) == 4 and all(lane["jobs"] for lane in split)
    assert sorted(_jobs(split)) == sorted((c, p) for c in codes for p in periods)
    for lane in split:
        mine = [j["code"] for j in lane["jobs"]]
        for code in set(mine):  # its periods, in order, one after another
            at = mine.index(code)
            assert [j["period"] for j in lane["jobs"][at:at + 3]] == periods
        # the lane's municipalities in the plan's order
        firsts = list(dict.fromkeys(mine))
        assert firsts == sorted(firsts, key=codes.index)
    assert lanes.split(codes, periods, {}, 4, weights) == split, "the same inputs give the same split"


def test_the_lanes_are_balanced_by_weight_biggest_first():
    # LPT: 9 -> 1, 8 -> 2, 7 -> 2 (15), 6 -> 1 (15), 5 -> 1 (20, the tie to the lower lane), 4 -> 2 (19)
    weights = {"a": 9, "b": 8, "c": 7, "d": 6, "e": 5, "f": 4}
    split = lanes.split(list(weights), [PERIOD], {}, 2, weights)
    loads = sorted(sum(weights[j["code"]] for j in lane["jobs"]) for lane in split)
    assert loads == [19, 20], loads  # a perfect split is 19.5 each; round-robin would give 9+7+5=21 vs 18
    # one heavy municipality gets a lane of its own while the others share
    heavy = {"a": 100, "b": 1, "c": 1, "d": 1}
    split = lanes.split(list(heavy), [PERIOD], {}, 2, heavy)
    assert [[j["code"] for j in lane["jobs"]] for lane in split] == [["a"], ["b", "c", "d"]]


def test_no_more_lanes_than_municipalities_and_one_municipality_is_one_lane_of_one_job():
    (only,) = lanes.split(["169"], [PERIOD], NAMES, 4)
    assert only == {"label": f"169 Høje-Taastrup {PERIOD}", "jobs": [{"code": "169", "name": "Høje-Taastrup",
                                                                       "period": PERIOD}]}
    assert len(lanes.split(["169", "461"], [PERIOD], NAMES, 4)) == 2
    with pytest.raises(ValueError):
        lanes.split(["169"], [PERIOD], NAMES, 0)


def test_a_lanes_label_names_its_municipalities_within_airflows_250_characters():
    codes = [str(100 + i) for i in range(98)]
    (one,) = lanes.split(codes, ["2013-11", "2013-12"], {}, 1)
    assert len(one["label"]) <= lanes.MAX_LABEL
    assert one["label"].startswith("lane 1/1: 100 101 102 ") and "more 2013-11..2013-12 (2 periods)" in one["label"]
    shown = one["label"].split(": ", 1)[1].split(" +")[0].split()
    assert one["label"].split(" +")[1].startswith(f"{98 - len(shown)} more")
    four = lanes.split(codes, [PERIOD], {}, 4)
    assert [lane["label"].split(":")[0] for lane in four] == [f"lane {i}/4" for i in range(1, 5)]
    assert four[0]["label"] == "lane 1/4: " + " ".join(j["code"] for j in four[0]["jobs"]) + f" {PERIOD}"


def test_the_lane_count_comes_from_the_settings_else_twice_the_cores():
    assert lanes.lane_count(None, cores=2) == 4
    assert lanes.lane_count(None, cores=1) == 2
    assert lanes.lane_count(3, cores=2) == 3
    for bad in (0, -1, "4", 2.5, True):
        with pytest.raises(ValueError, match="ingest_lanes"):
            lanes.lane_count(bad)


def test_the_weights_are_the_inbox_bytes_of_the_runs_periods(tmp_path, monkeypatch):
    monkeypatch.setenv("TRIVSEL_INBOX", str(tmp_path))
    for relative, size in (("169/incidents/2013-12/a.csv", 100), ("169/hr_absence/2013-12/b.xlsx", 50),
                           ("169/incidents/undated.csv", 7), ("169/incidents/2013-11/old.csv", 1000),
                           ("169/incidents/2013-12/.hidden", 999), ("461/survey/2013-12/c.csv", 3)):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(b"x" * size)
    assert lanes.inbox_bytes(["169", "461", "607"], [PERIOD]) == {"169": 157, "461": 3, "607": 0}
    assert lanes.inbox_bytes(["169"], ["2013-11", PERIOD]) == {"169": 1157}


def _lane(*codes: str) -> dict:
    return {"label": "test lane", "jobs": [{"code": c, "name": NAMES[c], "period": PERIOD} for c in codes]}


@pytest.fixture
def no_pull(monkeypatch):
    """The config's municipalities have no remote location; the lane's pull is not what these tests test."""
    from trivsel import pipeline

    monkeypatch.setattr(pipeline, "pull", lambda *a, **k: {"errors": []})


def test_a_lane_records_one_municipalitys_failure_and_goes_on(wh, sample_root, no_pull, monkeypatch, caplog):
    from trivsel import loading, pipeline, upstream, verdict

    for f in sample_root.glob(f"461/*/{PERIOD}/*"):
        wh.copy_sample(sample_root, str(f.relative_to(sample_root)))
    wh.put(REGISTRY, random.Random(169).randbytes(4000))  # cannot be parsed: quarantined at ingest
    real = loading.ingest_municipality

    def crashing(code, *a, **k):
        if code == "607":
            raise ValueError("unexpected value for employee 918273 in row 4")
        return real(code, *a, **k)

    monkeypatch.setattr(loading, "ingest_municipality", crashing)
    caplog.set_level("INFO", logger="trivsel.pipeline")
    result = pipeline.ingest_lane(_lane("169", "461", "607"), "run-lane")
    assert result["findings"] == {f"169 {PERIOD}": "quarantined", f"607 {PERIOD}": "error"}
    assert {r["status"] for r in result["loaded"][f"461 {PERIOD}"]} == {"validating"}, result
    rows = {(c, k): lines for c, k, lines in wh.conn.execute(
        "select municipality_code, kind, lines from audit.ingest_failure where run_id = 'run-lane'")}
    assert set(rows) == {("169", "quarantined"), ("607", "error")}
    assert "arbejdsskader_2013.csv" in rows[("169", "quarantined")][0]
    (error,) = rows[("607", "error")]
    assert error.startswith("ValueError: ") and "918273" not in error and "6 digits masked" in error
    text = caplog.text
    assert "918273" not in text
    assert f"municipality 169, period {PERIOD}:" in text and f"municipality 461, period {PERIOD}:" in text
    assert "2 of 3 job(s) had findings" in text and f"169 {PERIOD} (quarantined)" in text

    # what the verdict, findings, certify and run_outcome read
    ingests = lanes.failures(wh.conn, "run-lane", ["169", "461", "607"])
    assert set(ingests) == {"169", "607"}
    assert verdict.to_judge(["169", "461", "607"], {}, {}, {}, ingests) == ["169", "607"]
    with pytest.raises(verdict.MunicipalityFailed, match="(?s)municipality 607: .*ingest finding.*ValueError"):
        verdict.decide("607", {}, {}, {}, ingests)
    verdict.decide("461", {}, {}, {}, ingests)  # passes
    jobs = [{"code": c, "period": PERIOD} for c in ("169", "461", "607")]
    assert upstream.excused_codes(wh.conn, "run-lane", jobs) == {"169", "607"}
    missing = pipeline.not_published(wh.conn, [PERIOD], ["169", "461", "607"])
    assert set(missing) == {"169"}, "the parse quarantine stands in audit.delivery"
    with pytest.raises(pipeline.MunicipalitiesNotPublished, match="(?s)169, 607.*ValueError"):
        pipeline.outcome({"periods": [PERIOD], "codes": ["169", "461", "607"]}, "run-lane",
                         {"certify": "success", "publish": "success"})

    # the lane's retry: 607 now loads (nothing in its inbox), its row goes; 169 is still quarantined
    monkeypatch.setattr(loading, "ingest_municipality", real)
    again = pipeline.ingest_lane(_lane("169", "461", "607"), "run-lane")
    assert again["findings"] == {f"169 {PERIOD}": "quarantined"}
    assert {r["status"] for r in again["loaded"][f"461 {PERIOD}"]} == {"unchanged"}
    assert [c for (c,) in wh.conn.execute("select municipality_code from audit.ingest_failure"
                                          " where run_id = 'run-lane'")] == ["169"]


def test_a_lost_warehouse_connection_fails_the_lane_and_its_retry_finds_the_loaded_unchanged(
        wh, sample_root, no_pull, monkeypatch):
    from trivsel import loading, pipeline

    for f in sample_root.glob(f"*/*/{PERIOD}/*"):
        if f.relative_to(sample_root).parts[0] in ("169", "461"):
            wh.copy_sample(sample_root, str(f.relative_to(sample_root)))
    real = loading.ingest_municipality

    def lost(code, *a, **k):
        if code == "461":
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return real(code, *a, **k)

    monkeypatch.setattr(loading, "ingest_municipality", lost)
    with pytest.raises(psycopg.OperationalError):
        pipeline.ingest_lane(_lane("169", "461"), "run-lost")
    assert wh.conn.execute("select count(*) from audit.ingest_failure").fetchone()[0] == 0, \
        "infrastructure is not the municipality's finding"
    first = dict(wh.conn.execute("select file_name, delivery_id from audit.delivery"
                                 " where municipality_code = '169'").fetchall())
    assert first
    monkeypatch.setattr(loading, "ingest_municipality", real)
    retry = pipeline.ingest_lane(_lane("169", "461"), "run-lost")
    assert retry["findings"] == {}
    assert {r["status"] for r in retry["loaded"][f"169 {PERIOD}"]} == {"unchanged"}, retry
    assert {r["status"] for r in retry["loaded"][f"461 {PERIOD}"]} == {"validating"}, retry
    assert dict(wh.conn.execute("select file_name, delivery_id from audit.delivery"
                                " where municipality_code = '169'").fetchall()) == first, "not taken again"
    # the run's validate task decides both attempts' deliveries: each file loaded once
    assert pipeline.validate({"codes": ["169", "461"], "periods": [PERIOD]}, "run-lost") == {"169": [], "461": []}
    statuses = wh.conn.execute("select municipality_code, status, count(*) from audit.delivery"
                               " group by 1, 2 order by 1, 2").fetchall()
    assert [(c, s) for c, s, _n in statuses] == [("169", "loaded"), ("461", "loaded")], statuses
