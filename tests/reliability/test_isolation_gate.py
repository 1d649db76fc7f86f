"""The per-municipality quality gate's contract, without a database (trivsel.quality; the DAG run itself is in
test_isolation_e2e.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from trivsel import quality

ROOT = Path(__file__).resolve().parents[2]


def _per_municipality_tests() -> list[Path]:
    return [p for p in (ROOT / "dbt" / "tests").rglob("*.sql") if "per_municipality" in p.read_text()]


def test_per_municipality_tests_name_the_municipality_and_delivery_of_each_failing_row():
    tests = _per_municipality_tests()
    names = {p.stem for p in tests}
    assert {"assert_ohs_case_review_cases_registered", "assert_survey_population_has_answers"} <= names
    for p in tests:
        text = p.read_text()
        assert re.search(r"config\(tags=\['per_municipality'\]\)", text), p
        selects = [line for line in text.splitlines() if line.strip().startswith("select ")
                   and "municipality_code" in line and "delivery_id" in line]
        assert selects, f"{p}: the failing rows must carry municipality_code and delivery_id"


def test_the_gate_reads_the_failing_tests_and_refuses_what_it_cannot_attribute():
    results = [
        {"unique_id": "test.trivsel.assert_a", "status": "pass", "failures": 0},
        {"unique_id": "test.trivsel.assert_b", "status": "fail", "failures": 3,
         "relation_name": '"warehouse"."dbt_test__audit"."assert_b"'},
    ]
    assert quality._failing(results) == [("assert_b", '"warehouse"."dbt_test__audit"."assert_b"')]
    with pytest.raises(quality.QualityGateFailed, match="assert_c"):
        quality._failing([{"unique_id": "test.trivsel.assert_c", "status": "error", "failures": None,
                           "message": "relation does not exist"}])


def test_only_the_affected_municipalitys_verdict_fails_and_names_every_reason():
    from trivsel import verdict

    held = {"169": ["169/incidents/2012-12 sagsgennemgang_2012.csv (delivery 3): ... held (waiting)"]}
    with pytest.raises(verdict.MunicipalityFailed,
                       match=r"(?s)municipality 169: 1 deliveries held by the quality gate.*sagsgennemgang_2012"):
        verdict.decide("169", {}, held, {})
    assert "data tests" in verdict.decide("461", {}, held, {})
    assert "data tests" in verdict.decide("607", {}, {}, {})
    # both reasons at once: validation's quarantine and the gate's hold, and a failed pull
    failed = {"169": ["169/hr_absence/2014-01 fravaer_2014-01.csv (delivery 4): quarantined"]}
    pulls = {"169": ["2014-01: municipality 169, incidents: sftp://host/drop: connection refused"]}
    with pytest.raises(verdict.MunicipalityFailed, match=r"(?s)failed validation.*fravaer_2014-01.*held by the "
                                                         r"quality gate.*sagsgennemgang_2012.*pulling failed.*refused"):
        verdict.decide("169", failed, held, pulls)
    # not judged (the gate's XCom missing: it failed) and nothing of its own: skipped, not green
    with pytest.raises(verdict.MunicipalityUndecided, match="quality_gate did not succeed"):
        verdict.decide("461", {}, None, {})
    with pytest.raises(verdict.MunicipalityFailed):  # its own reason still shows when the gate failed
        verdict.decide("169", failed, None, {})


def test_a_verdict_instance_only_for_a_municipality_with_a_finding_and_for_every_one_when_none_was_judged():
    """verdict is mapped over verdict.to_judge(): a municipality left out is exactly one whose verdict would
    have passed, and one listed is one whose verdict fails (its reasons) or is skipped (not judged)."""
    from trivsel import verdict

    codes = ["169", "461", "607", "751"]
    failed = {"169": [], "461": [], "607": ["607/hr_absence/2014-01 fravaer_2014-01.csv (delivery 4): quarantined"],
              "751": []}
    held = {"461": ["461/incidents/2014-01 sagsgennemgang_2014.csv (delivery 7): ... held (waiting)"]}
    pulls = {"751": ["2014-01: municipality 751, incidents: sftp://host/drop: connection refused"]}
    assert verdict.to_judge(codes, failed, held, pulls) == ["461", "607", "751"]  # the plan's order
    assert verdict.to_judge(codes, {c: [] for c in codes}, {}, {}) == []  # a good month: no verdict instance
    assert verdict.to_judge(["169"], {}, {}, {"751": ["2014-01: refused"]}) == []  # only the run's codes
    # validate or the gate did not succeed: every municipality gets one, to show it was not judged
    assert verdict.to_judge(codes, None, held, {}) == codes
    assert verdict.to_judge(codes, failed, None, pulls) == codes
    for f, h, p in ((failed, held, pulls), ({c: [] for c in codes}, {}, {}), (None, held, {}), (failed, None, pulls)):
        listed = verdict.to_judge(codes, f, h, p)
        for code in codes:
            if code in listed:
                with pytest.raises((verdict.MunicipalityFailed, verdict.MunicipalityUndecided)):
                    verdict.decide(code, f, h, p)
            else:
                assert "every delivery was loaded and passed validation" in verdict.decide(code, f, h, p)


def test_the_dag_runs_per_municipality_tests_in_the_gate_and_nobody_waits_on_a_municipalitys_verdict():
    """Asserted on the DAG the factory builds (as Airflow parses it), not on the DAG file's source."""
    import json

    from trivsel import dbt_manifest
    from trivsel.config import load_config
    from trivsel.dag_factory import build_monthly_dag

    dbt_manifest.ensure()
    manifest = json.loads((dbt_manifest.manifest_dir() / "manifest.json").read_text(encoding="utf-8"))  # dbt's
    dag = build_monthly_dag(load_config())
    assert "tag:per_municipality" in dag.get_task("dbt_staging").exclude
    gated = {n["name"] for n in manifest["nodes"].values()
             if n["resource_type"] == "test" and "per_municipality" in n["tags"]}
    assert gated, "no per-municipality test left in the dbt project"
    # quality_gate runs them; the models' build after it does not (nor stages them as a model's test)
    assert not [t for t in dag.task_ids if any(g in t for g in gated)]
    assert dag.get_task("quality_gate").upstream_task_ids == {"dbt_staging"}
    assert "tag:per_municipality" in dag.get_task("dbt_models").exclude
    assert dag.get_task("dbt_models").upstream_task_ids == {"quality_gate"}
    # only the run's final verdict (run_outcome, after publish) waits on a municipality's verdict; certify waits
    # for the findings list (to name the verdicts), not for the verdicts
    assert dag.get_task("verdict").downstream_task_ids == {"run_outcome"}
    assert dag.get_task("findings").downstream_task_ids == {"verdict", "certify"}
    assert "verdict" not in dag.get_task("publish").get_flat_relative_ids(upstream=True)
    assert "verdict" not in dag.get_task("certify").get_flat_relative_ids(upstream=True)
