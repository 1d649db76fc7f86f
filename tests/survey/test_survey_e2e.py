"""The survey path end to end: after the real pipeline ran over every sample period (fixture
demo_warehouse from tests/conftest.py), the public tables hold the report's figures."""

from __future__ import annotations

import collections
import math

import pytest
from _survey_helpers import REPORT_COUNTS, REPORT_RATES_PCT, REPORT_SIGNIFICANT
from scipy import stats

pytestmark = pytest.mark.e2e


def test_response_rates_are_the_reports(demo_warehouse):
    rows = demo_warehouse.execute(
        "select municipality_code, wave, respondents, target_population, response_rate, meets_minimum "
        "from marts.survey_response_rate where unit_name is null").fetchall()
    found = {(r["municipality_code"], r["wave"]): r for r in rows}
    assert set(found) == set(REPORT_COUNTS)
    for key, (n, target) in REPORT_COUNTS.items():
        r = found[key]
        assert (r["respondents"], r["target_population"]) == (n, target), key
        assert round(100 * float(r["response_rate"]) + 1e-9) == REPORT_RATES_PCT[key], key
        assert r["meets_minimum"] == (key != ("461", "2013-05")), key


def test_answers_are_scored_on_every_item(demo_warehouse):
    [row] = demo_warehouse.execute(
        "select count(*) as n, count(distinct item_code) as items, "
        "count(*) filter (where not is_non_answer and answer_ordinal is null) as unscored, "
        "count(*) filter (where is_non_answer) as non_answers, "
        "count(*) filter (where answer_ordinal < 1 or answer_ordinal > scale_points) as out_of_scale "
        "from person.fct_survey_answer").fetchall()
    assert row["items"] >= 25
    assert row["n"] == (91 + 77) * row["items"]
    assert row["unscored"] == 0 and row["out_of_scale"] == 0
    assert row["non_answers"] > 0


def _answers(conn):
    """(scope, item, round) → answers, 'ALL' pooled by round over the municipalities with both rounds of the
    pair (every sample municipality has both)."""
    answers = collections.defaultdict(list)
    rounds = collections.defaultdict(set)
    for r in conn.execute(
            "select municipality_code, round, item_code, answer_ordinal from person.fct_survey_answer "
            "where not is_non_answer and round is not null").fetchall():
        answers[(r["municipality_code"], r["item_code"], r["round"])].append(r["answer_ordinal"])
        rounds[r["municipality_code"]].add(r["round"])
    assert all(rs == {"baseline", "followup"} for rs in rounds.values())
    for (_code, item, rnd), values in list(answers.items()):
        answers[("ALL", item, rnd)] += values
    return answers


def test_every_p_value_is_welch_recomputed_from_the_mart(demo_warehouse):
    answers = _answers(demo_warehouse)
    rows = demo_warehouse.execute("select * from reporting.survey_item_change").fetchall()
    assert rows
    assert {(r["municipality_code"], r["item_code"]) for r in rows} == {(s, i) for s, i, _ in answers}
    for r in rows:
        a = answers[(r["municipality_code"], r["item_code"], r["baseline_round"])]
        b = answers[(r["municipality_code"], r["item_code"], r["followup_round"])]
        p = stats.ttest_ind(a, b, equal_var=False).pvalue
        assert (r["n_baseline"], r["n_followup"]) == (len(a), len(b))
        if math.isnan(p):
            assert r["p_value"] is None
        else:
            assert r["p_value"] == pytest.approx(p, rel=1e-9, abs=1e-15), r
            assert r["significant"] == (p <= 0.05)


def test_item_changes_pair_rounds_never_months_of_different_municipalities(demo_warehouse):
    """Issue 12 §2: each row is one configured round pair; a municipality's row carries its own months,
    and 'ALL' carries a month only where every municipality surveyed that round in it."""
    from trivsel.config import load_config

    config = load_config()
    months = {m.code: m.sources["survey"].rounds for m in config.municipalities}
    rows = demo_warehouse.execute("select * from reporting.survey_item_change").fetchall()
    assert {(r["baseline_round"], r["followup_round"]) for r in rows} == {config.survey_rounds[:2]}
    for r in rows:
        base, follow = r["baseline_round"], r["followup_round"]
        if r["municipality_code"] == "ALL":
            members = [c for c, rs in months.items() if base in rs and follow in rs]
            expect_base = {months[c][base] for c in members}
            expect_follow = {months[c][follow] for c in members}
            assert r["baseline_wave"] == (expect_base.pop() if len(expect_base) == 1 else None)
            assert r["followup_wave"] == (expect_follow.pop() if len(expect_follow) == 1 else None)
        else:
            own = months[r["municipality_code"]]
            assert (r["baseline_wave"], r["followup_wave"]) == (own[base], own[follow]), r
    certified = demo_warehouse.execute(
        "select distinct municipality_code, baseline_round, followup_round, baseline_wave, followup_wave "
        "from certified.survey_item_change").fetchall()
    assert {(c["municipality_code"], c["baseline_round"], c["followup_round"]) for c in certified} == {
        (code, *config.survey_rounds[:2]) for code in [*months, "ALL"]}


def test_response_rates_per_unit_and_round(demo_warehouse):
    rows = demo_warehouse.execute("select * from marts.survey_response_rate").fetchall()
    populations = collections.Counter()
    for p in demo_warehouse.execute(
            "select municipality_code, wave, unit_name, target_population "
            "from intermediate.int_survey_populations_unioned").fetchall():
        populations[(p["municipality_code"], p["wave"], p["unit_name"])] += p["target_population"]
    respondents = collections.Counter(
        (r["municipality_code"], r["wave"], r["unit_name"]) for r in demo_warehouse.execute(
            "select distinct municipality_code, wave, unit_name, respondent_key from person.fct_survey_answer"
        ).fetchall())
    units = {(r["municipality_code"], r["wave"], r["unit_name"]): r for r in rows if r["unit_name"]}
    assert set(units) == set(populations)
    for key, r in units.items():
        assert (r["respondents"], r["target_population"]) == (respondents[key], populations[key])
        assert r["meets_minimum"] == (respondents[key] / populations[key] >= 0.60), key
        assert r["round"] == {"2012-05": "baseline", "2013-05": "followup"}[key[1]]
    # Odense's follow-up (11 of 40) is low in each of its units
    assert all(not r["meets_minimum"] for k, r in units.items() if k[:2] == ("461", "2013-05"))
    pooled = {r["round"]: r for r in rows if r["municipality_code"] == "ALL"}
    assert {k: (v["respondents"], v["target_population"]) for k, v in pooled.items()} == {
        "baseline": (91, 122), "followup": (77, 122)}


def test_significant_items_per_scope_are_the_reports(demo_warehouse):
    rows = demo_warehouse.execute(
        "select municipality_code, item_code from reporting.survey_item_change where significant").fetchall()
    found: dict[str, set[str]] = collections.defaultdict(set)
    for r in rows:
        found[r["item_code"]].add(r["municipality_code"])
    assert dict(found) == REPORT_SIGNIFICANT
    assert not any(r["municipality_code"] == "169" for r in rows)  # Høje-Taastrup: none


def test_fredericia_job_satisfaction_and_low_response(demo_warehouse):
    [r] = demo_warehouse.execute(
        "select * from reporting.survey_item_change where municipality_code = '607' and item_code = '4.1.1'"
    ).fetchall()
    assert round(100 * r["pct_favourable_baseline"]) == 90 and r["pct_favourable_followup"] == 1.0
    low = demo_warehouse.execute(
        "select distinct municipality_code, low_response from reporting.survey_item_change").fetchall()
    assert {(x["municipality_code"], x["low_response"]) for x in low} == {
        ("607", False), ("169", False), ("461", True), ("ALL", False)}
