"""marts.survey_response_rate per unit and by round, built by the real dbt model in a database of its own
from hand-made upstream rows: a unit at 50 % is flagged under settings.minimum_response_rate, and 'ALL'
pools a September municipality with a May one by round."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import throwaway_db
from psycopg.rows import dict_row

from trivsel import settings, warehouse

DB = "survey_response_units"

UPSTREAM = """
create schema if not exists marts;
create schema if not exists person;
create schema if not exists intermediate;
create schema if not exists staging;
create table person.fct_survey_answer (municipality_code text, unit_name text, wave text, round text,
                                      round_order integer, respondent_key text, item_code text);
create table intermediate.int_survey_populations_unioned (municipality_code text, wave text, unit_name text,
                                                          target_population integer);
create table staging.stg_config__survey_round (municipality_code text, round_name text, round_order integer,
                                               wave text);
create table staging.stg_config__setting (setting_name text, setting_value text);
"""

#: (municipality, wave, round, unit) → (respondents, target population)
CELLS = {
    ("101", "2012-09", "baseline", "Afsnit A"): (5, 10),   # 50 %: under 60 %
    ("101", "2012-09", "baseline", "Afsnit B"): (8, 10),   # 80 %
    ("101", "2012-09", "baseline", "Afsnit C"): (0, 4),    # nobody answered: a row with 0
    ("102", "2012-05", "baseline", "Hus D"): (9, 10),
    ("102", "2011-11", None, "Hus D"): (7, 10),            # a wave that is no round: not pooled
}


def _dbt_run(url: str, target: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, WAREHOUSE_URL=url)
    env.update(warehouse.dbt_env())
    env["TRIVSEL_DBT_DBNAME"] = DB
    parts = {"TRIVSEL_DBT_HOST", "TRIVSEL_DBT_PORT", "TRIVSEL_DBT_USER", "TRIVSEL_DBT_PASSWORD"}
    assert parts <= set(env)
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    dbt = str(Path(sys.executable).with_name("dbt"))
    # the var says 40 %: the threshold applied must be the one in the config table (60 %)
    return subprocess.run(
        [dbt, "run", "--select", "survey_response_rate", "--project-dir", str(settings.dbt_dir()),
         "--profiles-dir", str(settings.dbt_dir()), "--target-path", str(target / "target"),
         "--log-path", str(target / "logs"), "--vars", json.dumps({"minimum_response_rate": 0.40})],
        env=env, capture_output=True, text=True, cwd=str(settings.dbt_dir()), timeout=600)


@pytest.fixture(scope="module")
def rates(warehouse_url, tmp_path_factory, monkeypatch_module):
    url = throwaway_db.create(warehouse_url, DB)
    monkeypatch_module.setenv("WAREHOUSE_URL", url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(UPSTREAM)
        with conn.cursor() as cur:
            for (code, wave, rnd, unit), (respondents, target) in CELLS.items():
                cur.execute("insert into intermediate.int_survey_populations_unioned values (%s, %s, %s, %s)",
                            (code, wave, unit, target))
                for i in range(respondents):
                    cur.execute("insert into person.fct_survey_answer values (%s, %s, %s, %s, %s, %s, '1.1.1')",
                                (code, unit, wave, rnd, 1 if rnd else None, f"{code}:{wave}:{unit}:{i}"))
            cur.execute("insert into staging.stg_config__survey_round values ('101', 'baseline', 1, '2012-09'),"
                        " ('102', 'baseline', 1, '2012-05')")
            cur.execute("insert into staging.stg_config__setting values ('minimum_response_rate', '0.60')")
    res = _dbt_run(url, tmp_path_factory.mktemp("dbt"))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    with psycopg.connect(url, row_factory=dict_row) as conn:
        rows = conn.execute("select * from marts.survey_response_rate").fetchall()
    yield rows
    monkeypatch_module.undo()
    throwaway_db.drop(warehouse_url, DB)


def _row(rows, code, wave, unit):
    [row] = [r for r in rows if (r["municipality_code"], r["wave"], r["unit_name"]) == (code, wave, unit)]
    return row


def test_every_population_unit_has_its_rate_and_flag(rates):
    units = [r for r in rates if r["unit_name"] is not None]
    assert {(r["municipality_code"], r["wave"], r["round"], r["unit_name"]) for r in units} == set(CELLS)
    for r in units:
        respondents, target = CELLS[(r["municipality_code"], r["wave"], r["round"], r["unit_name"])]
        assert (r["respondents"], r["target_population"]) == (respondents, target)
        assert float(r["response_rate"]) == pytest.approx(respondents / target, abs=5e-5)
        assert r["meets_minimum"] == (respondents / target >= 0.60)
        assert float(r["minimum_response_rate"]) == 0.60


def test_a_unit_at_50_percent_is_flagged(rates):
    a = _row(rates, "101", "2012-09", "Afsnit A")
    assert float(a["response_rate"]) == 0.5 and a["meets_minimum"] is False
    assert _row(rates, "101", "2012-09", "Afsnit B")["meets_minimum"] is True
    # the municipality as a whole: 13 of 24 = 54 %, flagged too
    m = _row(rates, "101", "2012-09", None)
    assert (m["respondents"], m["target_population"], m["meets_minimum"]) == (13, 24, False)


def test_all_is_pooled_by_round_over_different_months(rates):
    [pooled] = [r for r in rates if r["municipality_code"] == "ALL"]
    assert pooled["round"] == "baseline" and pooled["wave"] is None  # September and May: no one month
    assert (pooled["respondents"], pooled["target_population"], pooled["municipalities"]) == (22, 34, 2)
    assert pooled["meets_minimum"] is True  # 22/34 = 65 %
    other = _row(rates, "102", "2011-11", None)
    assert other["round"] is None and other["respondents"] == 7
