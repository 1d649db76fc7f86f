"""The survey GX suites cover every raw column and agree with the seeds they repeat."""

from __future__ import annotations

import json
import re

import pytest
from _survey_helpers import seed

from trivsel import settings
from trivsel.sources import get_scheme
from trivsel.sources.base import LOAD_COLUMNS

TABLES = {"survey_response_csv": "survey_respondent_csv", "survey_population_csv": "survey_population_csv",
          "survey_answer_xlsx": "survey_workbook_xlsx", "survey_population_xlsx": "survey_workbook_xlsx"}


def suite(table):
    with open(settings.expectations_dir() / f"{table}.json", encoding="utf-8") as fh:
        return json.load(fh)


def expectations(table, kind, column=None):
    return [e["kwargs"] for e in suite(table)["expectations"]
            if e["type"] == kind and (column is None or e["kwargs"].get("column") == column)]


@pytest.mark.parametrize("table,scheme", TABLES.items())
def test_suite_columns_match_the_scheme(table, scheme):
    assert suite(table)["name"] == table
    [columns] = expectations(table, "expect_table_columns_to_match_set")
    expected = [name for name, _ in LOAD_COLUMNS] + get_scheme(scheme).scheme.table(table).column_names
    assert columns["column_set"] == expected
    [wave] = expectations(table, "expect_column_values_to_be_in_set", "wave")
    assert wave["value_set"] == [{"$param": "period"}]
    [unit] = expectations(table, "expect_column_values_to_be_in_set", "unit_name")
    assert unit["value_set"] == {"$param": "unit_names"}


def answer_check():
    """The suite's one unexpected_rows_expectation over the pairs of `answers`, and the sets it names."""
    [entry] = [e for e in suite("survey_response_csv")["expectations"] if e["type"] == "unexpected_rows_expectation"]
    return entry["kwargs"]["unexpected_rows_query"], entry["meta"]


def in_list(query: str, column: str) -> set[str]:
    """The literals of `<column> in (...)` in the query."""
    [found] = re.findall(re.escape(column) + r" in \(((?:'(?:[^']|'')*'(?:, )?)+)\)", query)
    return {v.replace("''", "'") for v in re.findall(r"'((?:[^']|'')*)'", found)}


def test_labels_items_and_codes_match_the_seeds():
    query, meta = answer_check()
    labels = {r["label_da"] for r in seed("survey_scale_labels.csv")}
    items = {r["item_code"] for r in seed("survey_items.csv")}
    assert set(meta["answer_labels"]) == labels and in_list(query, "a.answer_label") == labels
    assert set(meta["item_codes"]) == items and in_list(query, "a.item_code") == items
    [codes] = expectations("survey_answer_xlsx", "expect_column_values_to_be_in_set", "answer_code")
    assert set(codes["value_set"]) == {int(r["workbook_code"]) for r in seed("survey_workbook_codes.csv")}
    [headers] = expectations("survey_answer_xlsx", "expect_column_unique_value_count_to_be_between", "item_header")
    assert headers["min_value"] == headers["max_value"] == len(seed("survey_items.csv"))


def test_one_row_per_respondent_and_item():
    # csv: one raw row per respondent; its answers are one JSON object, whose keys are unique by construction
    [csv_unique] = expectations("survey_response_csv", "expect_column_values_to_be_unique")
    assert csv_unique["column"] == "respondent_id"
    [xlsx_unique] = expectations("survey_answer_xlsx", "expect_compound_columns_to_be_unique")
    assert xlsx_unique["column_list"] == ["respondent_id", "item_header"]
