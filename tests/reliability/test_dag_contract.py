"""The DAG's reliability settings, read from its source (importing it runs `dbt ls` through Cosmos)."""

from __future__ import annotations

import ast
from pathlib import Path

DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "trivsel_monthly.py"


def _tree():
    return ast.parse(DAG_FILE.read_text(encoding="utf-8"))


def test_tasks_retry_with_backoff_and_have_a_failure_callback():
    tree = _tree()
    default_args = next(n.value for n in ast.walk(tree) if isinstance(n, ast.Assign)
                        and any(isinstance(t, ast.Name) and t.id == "default_args" for t in n.targets))
    keys = {k.value: v for k, v in zip(default_args.keys, default_args.values, strict=True)}
    assert {"retries", "retry_delay", "retry_exponential_backoff", "max_retry_delay", "on_failure_callback"} <= set(keys)
    assert isinstance(keys["retry_exponential_backoff"], ast.Constant) and keys["retry_exponential_backoff"].value is True
    assert "TRIVSEL_TASK_RETRIES" in ast.unparse(keys["retries"])
    callback = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "_on_failure")
    assert "log.error" in ast.unparse(callback)


def test_gate_runs_whatever_the_municipalities_ingest_did():
    tree = _tree()
    gate = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "loads_done")
    assert "trigger_rule='all_done'" in ast.unparse(gate.decorator_list[0])


def test_a_quarantine_fails_the_municipalitys_task_also_on_retry(monkeypatch):
    """A retry finds the quarantined file 'unchanged': the task must still fail, not turn green."""
    import pytest

    from trivsel import loading, pipeline

    outcome = loading.Outcome("607", "hr_absence", "2014-01", "x.xlsx", "unchanged", "hr_unit_workbook", 7,
                              reason="already quarantined as delivery 7")
    monkeypatch.setattr(loading, "ingest_municipality", lambda *a, **k: [outcome])
    with pytest.raises(pipeline.DeliveriesQuarantined, match="x.xlsx"):
        pipeline.ingest("607", "2014-01", "retry")
    ok = loading.Outcome("607", "hr_absence", "2014-01", "y.xlsx", "unchanged", "hr_unit_workbook", 8,
                         reason="already loaded as delivery 8")
    monkeypatch.setattr(loading, "ingest_municipality", lambda *a, **k: [ok])
    assert pipeline.ingest("607", "2014-01", "retry")[0]["status"] == "unchanged"
