"""The GX suites, the parsers and the dbt seeds agree on columns and labels."""

from __future__ import annotations

import csv
import json

import pytest

from trivsel import settings
from trivsel.sources import _MODULES, get_scheme
from trivsel.sources.base import LOAD_COLUMNS

SCHEMES = ("ohs_registry_export", "ohs_case_review", "reported_accidents_by_unit", "internal_incident_register",
           "incident_yearly_aggregate", "use_of_force_yearly")
SEEDS = settings.dbt_dir() / "seeds" / "incidents"


def _seed(name: str) -> list[dict[str, str]]:
    with (SEEDS / f"{name}.csv").open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _suite(table: str) -> dict:
    with (settings.expectations_dir() / f"{table}.json").open(encoding="utf-8") as fh:
        return json.load(fh)


def _kwargs(suite: dict, kind: str, column: str | None = None) -> list[dict]:
    return [e["kwargs"] for e in suite["expectations"]
            if e["type"] == kind and (column is None or e["kwargs"].get("column") == column)]


def test_every_scheme_is_registered_and_in_the_scheme_seed():
    assert set(SCHEMES) <= set(_MODULES)
    seeded = {r["scheme"]: r for r in _seed("incident_scheme")}
    for name in SCHEMES:
        scheme = get_scheme(name).scheme
        assert seeded[name]["source"] == scheme.source


@pytest.mark.parametrize("name", SCHEMES)
def test_suite_per_raw_table_matches_the_scheme(name):
    for table in get_scheme(name).scheme.tables:
        suite = _suite(table.name)
        assert suite["name"] == table.name
        [cols] = _kwargs(suite, "expect_table_columns_to_match_set")
        assert cols["column_set"] == [n for n, _ in LOAD_COLUMNS] + table.column_names
        [period] = _kwargs(suite, "expect_column_values_to_be_in_set", "period")
        assert period["value_set"] == [{"$param": "period"}]
        assert _kwargs(suite, "expect_table_row_count_to_be_between")


def test_labels_agree_between_parsers_suites_and_the_label_map():
    from trivsel.sources import (
        incident_yearly_aggregate,
        internal_incident_register,
        ohs_registry_export,
        reported_accidents_by_unit,
    )

    mapped: dict[tuple[str, str], set[str]] = {}
    for r in _seed("incident_label_map"):
        mapped.setdefault((r["scheme"], r["label_column"]), set()).add(r["label"])
    pairs = {
        ("ohs_registry_export", "event_type", "ohs_registration"): ohs_registry_export.event_types(),
        ("ohs_registry_export", "injury_type", "ohs_registration"): ohs_registry_export.injury_types(),
        ("reported_accidents_by_unit", "injury_effect", "reported_accident_count"):
            reported_accidents_by_unit.injury_effects(),
        ("internal_incident_register", "incident_type", "internal_incident"): internal_incident_register.types(),
        ("internal_incident_register", "subtype", "internal_incident"): internal_incident_register.subtypes(),
        ("incident_yearly_aggregate", "incident_type", "incident_year_count"): incident_yearly_aggregate.types(),
    }
    for (scheme, column, table), labels in pairs.items():
        assert labels and mapped[(scheme, column)] == set(labels), (scheme, column)
        [in_suite] = _kwargs(_suite(table), "expect_column_values_to_be_in_set", column)
        assert set(in_suite["value_set"]) == set(labels), f"{table}.json {column}: regenerate from the seed"
    absence = {r["label"] for r in _seed("incident_with_absence")}
    assert absence == set(ohs_registry_export.absence_labels())
    [in_suite] = _kwargs(_suite("ohs_registration"), "expect_column_values_to_be_in_set", "absence_label")
    assert set(in_suite["value_set"]) == absence


def test_taxonomy_seeds():
    classes = {r["incident_class"]: r for r in _seed("incident_class")}
    assert {"near_miss", "threat", "violence", "use_of_force", "other_injury"} <= set(classes)
    assert classes["other_injury"]["counts_as_episode"] == "false"
    assert {r["register"] for r in _seed("incident_register")} == {"reported_accident", "internal", "use_of_force"}
    assert {r["incident_class"] for r in _seed("incident_label_map") if r["incident_class"]} <= set(classes)
    shares = {(r["occupation_en"], r["incident_class"]): float(r["share_exposed_pct"])
              for r in _seed("incident_benchmark")}
    assert shares == {("Special-needs educators", "threat"): 46.5, ("Special-needs educators", "violence"): 37.7,
                      ("Social and health care helpers and assistants", "threat"): 33.4,
                      ("Social and health care helpers and assistants", "violence"): 32.4}
