"""What a municipal data team reads in the Airflow UI: the DAG's docs and the tasks' display names.

Why: the task ids are engineering names (`loads_done`, Cosmos' `dbt.relationships_fct_…_test`), cut off in the
grid. Display names change nothing but the label: task ids, dependencies and Assets stay as they are. The
DAG's docs (templates/dag/trivsel_monthly.md) say what a run does, how to trigger and backfill it, and where
to look when a municipality fails.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

DOC = Path(__file__).resolve().parent / "templates" / "dag" / "trivsel_monthly.md"

#: task id → display name (Danish, English in parentheses)
TASKS = {
    "plan": "Planlæg kørslen (plan)",
    "lanes": "Kommuner i indlæsningsbaner (lanes)",
    "ingest": "Hent og indlæs leverancer pr. bane (ingest)",
    "validate": "Kontrollér alle leverancer (validate)",
    "loads_done": "Alle leverancer afgjort (loads done)",
    "dbt_seeds": "Kodelister (dbt seeds)",
    "dbt_staging": "Staging-modeller (dbt staging)",
    "quality_gate": "Kvalitetstest pr. kommune (quality gate)",
    "dbt_models": "Modeller og datatest (dbt models)",
    "findings": "Kommuner med fund (findings)",
    "verdict": "Udfald pr. kommune med fund (verdict)",
    "significance_tests": "Signifikanstest pr. domæne (significance tests)",
    "certify": "Certificér (certify)",
    "publish": "Offentliggør (publish)",
    "run_outcome": "Kørslens udfald (run outcome)",
}
MAX_LEN = 72


def doc_md() -> str:
    return DOC.read_text(encoding="utf-8")


def _short(text: str) -> str:
    return text if len(text) <= MAX_LEN else text[: MAX_LEN - 1] + "…"


KINDS = {"relationships": "relation", "not_null": "not null", "accepted_values": "values"}


def dbt_label(node: dict[str, Any]) -> str:
    """A model task: its model's name; a test task: what it tests, e.g. `test relation:
    fct_survey_answer.item_code → dim_survey_item`."""
    if node.get("resource_type") == "test":
        meta = node.get("test_metadata") or {}
        kind = meta.get("name") or node.get("name", "test")
        attached = (node.get("attached_node") or "").rsplit(".", 1)[-1]
        refs = [r.get("name", "") if isinstance(r, dict) else str(r[-1]) for r in node.get("refs") or []]
        others = [r for r in dict.fromkeys(refs) if r and r != attached]
        column = (meta.get("kwargs") or {}).get("column_name")
        target = f"{attached}.{column}" if attached and column else attached or ", ".join(others)
        return _short(f"test {KINDS.get(kind, kind)}: {target}" + (f" → {', '.join(others)}"
                                                                    if others and attached else ""))
    return _short(f"{node.get('name', '')} (model)")


def label(dag, group=None, nodes: dict[str, Any] | None = None) -> None:
    """Set the display names of the DAG's own tasks and of the Cosmos group's tasks."""
    for task in dag.tasks:
        if task.task_id not in TASKS:
            continue
        if hasattr(task, "partial_kwargs"):  # a mapped task keeps its operator's arguments there
            task.partial_kwargs["task_display_name"] = TASKS[task.task_id]
        else:
            task._task_display_name = TASKS[task.task_id]
    if group is None or nodes is None:
        return
    for unique_id, task in getattr(group, "tasks_map", {}).items():
        node = (nodes.get("nodes") or {}).get(unique_id)
        if node is not None and hasattr(task, "task_id"):
            task._task_display_name = dbt_label(node)
