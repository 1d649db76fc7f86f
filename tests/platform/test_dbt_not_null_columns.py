"""The generic test not_null_columns (dbt/macros/tests/not_null_columns.sql): one scan for the not-null check
of many columns, where a `not_null` per column scanned the table once each.

Its SQL, rendered from the macro file as dbt would render it (the macro's only dbt names are adapter.quote,
dbt.string_literal and exceptions.raise_compiler_error, given here as dbt-postgres defines them), runs on the
session's test server against a small table: a row fails exactly when a checked column is null (under its
`when` condition, if it has one), and it names those columns and nothing of the row. The YAML side, that each
folded model still checks every column it checked before, under the same condition, is
test_folded_models_keep_every_not_null.
"""

from __future__ import annotations

import json
import re

import jinja2
import psycopg
import pytest

from trivsel import settings

MACRO = settings.dbt_dir() / "macros" / "tests" / "not_null_columns.sql"


class _Adapter:
    @staticmethod
    def quote(identifier: str) -> str:
        return '"' + identifier.replace('"', '""') + '"'


class _Dbt:
    @staticmethod
    def string_literal(value: str) -> str:
        return "'" + value.replace("'", "''") + "'"


class _CompilerError(Exception):
    pass


class _Exceptions:
    @staticmethod
    def raise_compiler_error(message: str) -> None:
        raise _CompilerError(message)


def render(model: str, columns: list[str], when: dict[str, str] | None = None) -> str:
    """The test's SQL for `model`: dbt's `{% test %}` block is a macro named test_<name>."""
    text = MACRO.read_text()
    text = re.sub(r"{%\s*test\s+not_null_columns\(", "{% macro test_not_null_columns(", text)
    text = re.sub(r"{%\s*endtest\s*%}", "{% endmacro %}", text)
    env = jinja2.Environment(extensions=["jinja2.ext.do"], undefined=jinja2.StrictUndefined)
    module = env.from_string(text, globals={"adapter": _Adapter, "dbt": _Dbt,
                                            "exceptions": _Exceptions}).module
    return str(module.test_not_null_columns(model=model, columns=columns, when=when or {}))


@pytest.fixture()
def conn(warehouse_url):
    with psycopg.connect(warehouse_url) as c:
        c.execute("create temp table answers (id int, label text, delivered text, ordinal int, non_answer bool)")
        c.execute("""insert into answers values
            (1, 'Ja', 'Ja', 3, false),       -- complete
            (2, null, null, null, true),     -- blank: label and delivered null together, no ordinal: passes
            (3, null, 'Ja', 3, false),       -- label missing for a delivered answer
            (4, 'Ja', 'Ja', null, false),    -- ordinal missing for an answer
            (5, 'Ja', 'Ja', null, null),     -- non_answer null (and so ordinal is not required)
            (null, 'Ja', null, 3, false)     -- id null, delivered missing for a label""")
        yield c
        c.rollback()


COLUMNS = ["id", "label", "delivered", "ordinal", "non_answer"]
WHEN = {"label": "delivered is not null", "delivered": "label is not null", "ordinal": "not non_answer"}


def test_fails_exactly_for_the_null_columns(conn):
    rows = conn.execute(render("answers", COLUMNS, WHEN)).fetchall()
    assert sorted(r[0] for r in rows) == [["id", "delivered"], ["label"], ["non_answer"], ["ordinal"]]


def test_without_when_every_null_fails(conn):
    rows = conn.execute(render("answers", ["label"])).fetchall()
    assert sorted(r[0] for r in rows) == [["label"], ["label"]]


def test_a_complete_table_passes(conn):
    assert conn.execute(render("(select * from answers where id = 1) dbt_subquery", COLUMNS, WHEN)).fetchall() == []


def test_when_must_name_a_checked_column():
    with pytest.raises(_CompilerError, match="ordinal"):
        render("answers", ["label"], {"ordinal": "not non_answer"})


#: what each model checked with one `not_null` per column before the fifth round (3e4e5be): column -> the
#: test's full `where` (None: every row). The one not_null_columns test must check the same.
BEFORE: dict[str, dict[str, str | None]] = {
    "stg_ohs_registry_export__ohs_registration": {"delivery_id": None, "municipality_code": None, "period": None,
        "source_row": None, "scheme": None, "case_id": None, "event_date": None, "year": None, "unit_label": None,
        "event_type": None, "injury_type": None, "absence_label": None},
    "stg_ohs_case_review__ohs_case_review": {"delivery_id": None, "municipality_code": None, "period": None,
        "source_row": None, "scheme": None, "case_id": None, "event_date": None, "year": None,
        "also_violence_label": None, "also_violence": None, "excluded_label": None, "excluded": None},
    "stg_reported_accidents_by_unit__reported_accident_count": {"delivery_id": None, "municipality_code": None,
        "period": None, "source_row": None, "scheme": None, "unit_label": None, "year": None,
        "injury_effect": None, "n_reported": None},
    "stg_internal_incident_register__internal_incident": {"delivery_id": None, "municipality_code": None,
        "period": None, "source_row": None, "scheme": None, "incident_id": None, "event_date": None, "year": None,
        "unit_label": None, "incident_type": None, "subtype": None},
    "stg_incident_yearly_aggregate__incident_year_count": {"delivery_id": None, "municipality_code": None,
        "period": None, "source_row": None, "scheme": None, "year": None, "incident_type": None,
        "n_incidents": None},
    "stg_use_of_force_yearly__use_of_force_count": {"delivery_id": None, "municipality_code": None, "period": None,
        "source_row": None, "scheme": None, "year": None, "n_use_of_force": None},
    "stg_hr_unit_workbook__hr_unit_workbook_value": {"delivery_id": None, "municipality_code": None,
        "period": None, "source_row": None, "sheet_name": None, "cell": None, "source_system": None,
        "unit_text": None, "year": None, "is_year_figure": None, "value_text": None},
    "stg_hr_unit_year_summary__hr_unit_year_summary": {"delivery_id": None, "municipality_code": None,
        "period": None, "source_row": None, "unit_text": None, "year": None, "metric_label": None,
        "value_text": None},
    "stg_survey_respondent_csv__survey_answer_csv": {
        "delivery_id": "__not_yet_in__(person.fct_survey_answer)",
        "municipality_code": "__not_yet_in__(person.fct_survey_answer)",
        "period": "__not_yet_in__(person.fct_survey_answer)",
        "source_row": "__not_yet_in__(person.fct_survey_answer)",
        "respondent_id": "__not_yet_in__(person.fct_survey_answer)",
        "unit_name": "__not_yet_in__(person.fct_survey_answer)",
        "wave": "__not_yet_in__(person.fct_survey_answer)",
        "item_code": "__not_yet_in__(person.fct_survey_answer)"},
    "stg_survey_population_csv__survey_population_csv": {"delivery_id": None, "municipality_code": None,
        "period": None, "source_row": None, "unit_name": None, "wave": None, "target_population": None},
    "stg_survey_workbook_xlsx__survey_answer_xlsx": {
        "delivery_id": "__not_yet_in__(person.fct_survey_answer)",
        "municipality_code": "__not_yet_in__(person.fct_survey_answer)",
        "period": "__not_yet_in__(person.fct_survey_answer)",
        "source_row": "__not_yet_in__(person.fct_survey_answer)",
        "respondent_id": "__not_yet_in__(person.fct_survey_answer)",
        "unit_name": "__not_yet_in__(person.fct_survey_answer)",
        "wave": "__not_yet_in__(person.fct_survey_answer)",
        "item_header": "__not_yet_in__(person.fct_survey_answer)",
        "item_header_key": "__not_yet_in__(person.fct_survey_answer)",
        "column_letter": "__not_yet_in__(person.fct_survey_answer)",
        "answer_value": "__not_yet_in__(person.fct_survey_answer) and (answer_code is not null)"},
    "stg_survey_workbook_xlsx__survey_population_xlsx": {"delivery_id": None, "municipality_code": None,
        "period": None, "source_row": None, "unit_name": None, "wave": None, "target_population": None},
    "fct_survey_answer": {"municipality_code": "__new_deliveries__", "unit_name": "__new_deliveries__",
        "wave": "__new_deliveries__", "respondent_key": "__new_deliveries__",
        "respondent_id": "__new_deliveries__", "item_code": "__new_deliveries__", "scale": "__new_deliveries__",
        "direction": "__new_deliveries__",
        "answer_label": "__new_deliveries__ and (answer_as_delivered is not null)",
        "answer_as_delivered": "__new_deliveries__ and (answer_label is not null)",
        "answer_ordinal": "__new_deliveries__ and (not is_non_answer)",
        "answer_score": "__new_deliveries__ and (not is_non_answer)",
        "favourable_score": "__new_deliveries__ and (not is_non_answer)",
        "is_favourable": "__new_deliveries__ and (not is_non_answer)", "is_non_answer": "__new_deliveries__",
        "scale_points": "__new_deliveries__", "scheme": "__new_deliveries__", "delivery_id": "__new_deliveries__",
        "source_row": "__new_deliveries__", "reference_fingerprint": "__new_deliveries__"},
}


#: what the table int_survey_answers_unioned checked (3e4e5be, per column) before the sixth round made it a
#: view that fct_survey_answer reads through (a view stores nothing, and has no xmin for __new_deliveries__)
UNION_BEFORE: dict[str, str | None] = {"delivery_id": "__new_deliveries__", "scheme": "__new_deliveries__",
    "municipality_code": "__new_deliveries__", "period": "__new_deliveries__",
    "source_row": "__new_deliveries__", "respondent_id": "__new_deliveries__",
    "unit_name": "__new_deliveries__", "wave": "__new_deliveries__", "item_code": "__new_deliveries__",
    "answer_label": "__new_deliveries__ and (answer_as_delivered is not null)",
    "answer_as_delivered": "__new_deliveries__ and (answer_label is not null)",
    "reference_fingerprint": "__new_deliveries__"}
SURVEY_VIEWS = ("stg_survey_respondent_csv__survey_answer_csv", "stg_survey_workbook_xlsx__survey_answer_xlsx")


def _full_where(test: dict, column: str) -> str | None:
    """The condition a per-column not_null had: the test's where, and the column's `when`."""
    where, when = test["config"].get("where"), test["test_metadata"]["kwargs"].get("when", {}).get(column)
    if when:
        return f"{where} and ({when})" if where else when
    return where


def _manifest() -> dict:
    return json.loads((settings.dbt_dir() / "target" / "dag-manifest" / "manifest.json").read_text())


def _tests_by_model(manifest: dict) -> dict[str, list[dict]]:
    tests: dict[str, list[dict]] = {}
    for node in manifest["nodes"].values():
        if node["resource_type"] == "test" and node.get("attached_node"):
            tests.setdefault(node["attached_node"].split(".")[-1], []).append(node)
    return tests


def _checked(tests: list[dict]) -> dict[str, str | None]:
    [combined] = [t for t in tests if t["test_metadata"]["name"] == "not_null_columns"]
    return {c: _full_where(combined, c) for c in combined["test_metadata"]["kwargs"]["columns"]}


def test_folded_models_keep_every_not_null():
    """Every column that these models checked for nulls is still checked, on the same rows, by the model's one
    not_null_columns test, and no per-column not_null is left beside it to scan the rows again. Reads the
    manifest that `trivsel manifest` writes."""
    tests = _tests_by_model(_manifest())
    for model, before in BEFORE.items():
        [combined] = [t for t in tests[model] if t["test_metadata"]["name"] == "not_null_columns"]
        columns = combined["test_metadata"]["kwargs"]["columns"]
        assert {c: _full_where(combined, c) for c in columns} == before, model
        assert len(columns) == len(set(columns)), model
        assert combined["name"] == f"not_null_columns_{model}"
        assert not [t["name"] for t in tests[model] if t["test_metadata"]["name"] == "not_null"], model


def test_the_union_view_checks_nothing_twice_and_drops_no_check():
    """int_survey_answers_unioned is a view (the sixth round): each answer is stored once, in fct_survey_answer,
    and checked there. Every column the table checked for nulls is checked by the fact's one not_null_columns
    under the same condition, except `period` (the fact has none), which both staging answer views check on
    the rows not yet in the fact; the scheme's accepted values and the key's uniqueness (the fact's
    respondent_key is municipality_code:wave:respondent_id) are the fact's: the rows a new row can collide
    with (its municipality × wave), where the table tested every delivery of the new rows' municipalities."""
    manifest = _manifest()
    tests = _tests_by_model(manifest)
    [union] = [n for n in manifest["nodes"].values() if n["name"] == "int_survey_answers_unioned"]
    assert union["config"]["materialized"] == "view"
    assert "int_survey_answers_unioned" not in tests  # a test of a view reads the view again
    fact = _checked(tests["fct_survey_answer"])
    assert {c: fact[c] for c in UNION_BEFORE if c != "period"} == {c: w for c, w in UNION_BEFORE.items()
                                                                   if c != "period"}
    for view in SURVEY_VIEWS:
        assert _checked(tests[view])["period"] == "__not_yet_in__(person.fct_survey_answer)", view
    [accepted] = [t for t in tests["fct_survey_answer"] if t["test_metadata"]["name"] == "accepted_values"]
    assert accepted["column_name"] == "scheme" and accepted["config"]["where"] == "__new_deliveries__"
    assert sorted(accepted["test_metadata"]["kwargs"]["values"]) == ["survey_respondent_csv", "survey_workbook_xlsx"]
    [unique] = [t for t in tests["fct_survey_answer"] if t["test_metadata"]["name"] == "unique_combination"]
    assert unique["test_metadata"]["kwargs"]["columns"] == ["respondent_key", "item_code"]
    assert unique["config"]["where"] == "__same_keys_as_new__(municipality_code, wave)"
    [fct] = [n for n in manifest["nodes"].values() if n["name"] == "fct_survey_answer"]
    assert re.search(r"answers\.municipality_code \|\| ':' \|\| answers\.wave \|\| ':' \|\| answers\.respondent_id"
                     r"\s+as respondent_key", fct["raw_code"])
