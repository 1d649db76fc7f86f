"""The models incremental by delivery write each new row once (dbt/macros/incremental_by_delivery.sql): their
strategy `insert_new_deliveries` inserts the selection straight into the model, and the temporary table that
dbt's incremental materialization creates before it calls a strategy is created empty
(the project's postgres__get_create_table_as_sql).

That override leans on how dbt-adapters' materialization is written, not on a documented contract, so these
tests read the installed dbt's macros from the manifest and fail when it changes: the temporary table is no
longer created through get_create_table_as_sql (it would be filled, the rows written twice again), the
strategy is not called after it, or dbt-postgres gets a postgres__get_create_table_as_sql of its own (which the
project's would hide). The rows themselves: tests/absence/test_absence_incremental.py (an incremental build
equals a full refresh, after corrections) and its check of what dbt ran.
"""

from __future__ import annotations

import json
import re

import pytest

from trivsel import dbt_manifest

STRATEGY = "insert_new_deliveries"
#: the models incremental by delivery (docs/developing.md "Models incremental by delivery")
MODELS = {"int_absence__employee_month", "int_absence__delivery_unit_month", "fct_absence_employee_month",
          "fct_survey_answer", "int_survey_answer_counts"}


@pytest.fixture(scope="module")
def manifest() -> dict:
    dbt_manifest.ensure()
    return json.loads((dbt_manifest.manifest_dir() / "manifest.json").read_text(encoding="utf-8"))


def test_the_models_incremental_by_delivery_use_the_strategy(manifest):
    incremental = {n["name"]: n["config"] for n in manifest["nodes"].values()
                   if n["resource_type"] == "model" and n["config"].get("materialized") == "incremental"}
    assert set(incremental) == MODELS
    assert {name: c.get("incremental_strategy") for name, c in incremental.items()} == dict.fromkeys(MODELS, STRATEGY)
    assert f"macro.trivsel.get_incremental_{STRATEGY}_sql" in manifest["macros"]


def test_dbt_creates_the_temporary_table_through_the_overridden_macro_before_the_strategy(manifest):
    materialization = manifest["macros"]["macro.dbt.materialization_incremental_default"]["macro_sql"]
    flat = re.sub(r"\s+", "", materialization)
    temp = flat.find("run_query(get_create_table_as_sql(True,temp_relation,sql))")
    strategy = flat.find("adapter.get_incremental_strategy_macro(context,incremental_strategy)")
    call = flat.find("strategy_sql_macro_func(strategy_arg_dict)")
    assert temp >= 0, "dbt's incremental materialization no longer creates its temporary table this way"
    assert 0 <= strategy and temp < call, "the strategy is no longer built after the temporary table"
    # the strategy reads the model's selection as `sql`, the variable the materialization fills its table with
    assert "'dest_columns':dest_columns" in flat


def test_the_project_override_hides_no_adapter_macro(manifest):
    owners = {m["package_name"] for m in manifest["macros"].values() if m["name"] == "postgres__get_create_table_as_sql"}
    assert owners == {"trivsel"}, owners
    # ... and it delegates to dbt's default, which dispatches to dbt-postgres' create_table_as
    assert "macro.dbt.default__get_create_table_as_sql" in manifest["macros"]
    assert "macro.dbt_postgres.postgres__create_table_as" in manifest["macros"]
    override = manifest["macros"]["macro.trivsel.postgres__get_create_table_as_sql"]["macro_sql"]
    assert "get_empty_subquery_sql(sql)" in override and f"== '{STRATEGY}'" in override
