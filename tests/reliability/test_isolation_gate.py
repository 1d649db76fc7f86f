"""The per-municipality quality gate's contract, without a database (trivsel.quality; the DAG run itself is in
test_isolation_e2e.py)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from trivsel import quality

ROOT = Path(__file__).resolve().parents[2]
DAG_FILE = ROOT / "dags" / "trivsel_monthly.py"


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


def test_only_the_affected_municipalitys_quality_task_fails():
    held = {"169": ["169/incidents/2012-12 sagsgennemgang_2012.csv (delivery 3): ... held (waiting)"]}
    with pytest.raises(quality.MunicipalityHeld, match=r"(?s)municipality 169: 1 deliveries held.*sagsgennemgang_2012"):
        quality.municipality_check("169", held)
    assert "passes" in quality.municipality_check("461", held)
    assert "passes" in quality.municipality_check("607", {})


def test_the_dag_runs_per_municipality_tests_in_the_gate_and_nobody_waits_on_a_municipalitys_verdict():
    source = DAG_FILE.read_text(encoding="utf-8")
    tree = ast.parse(source)
    staging = next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and any(
        k.arg == "task_id" and getattr(k.value, "value", None) == "dbt_staging" for k in n.keywords))
    assert any(k.arg == "exclude" and k.value.value == "tag:per_municipality" for k in staging.keywords)
    render = next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "RenderConfig")
    exclude = next(k.value for k in render.keywords if k.arg == "exclude")
    assert "tag:per_municipality" in [e.value for e in exclude.elts]
    chain = next(line for line in source.splitlines() if "certify(planned)" in line and ">>" in line)
    assert "staging >> held >> models" in chain.replace(" ", " ")
    assert "quality" not in chain.replace("quality_gate", ""), "no task waits on a municipality's quality verdict"
