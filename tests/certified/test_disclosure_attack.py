"""Issue 13: the disclosure rule proven by an attacker who does arithmetic on what `evaluator` can read.

The attacker (tests/certified/disclosure_attack.py) reads the certified tables as the role evaluator,
solves them (exhaustive integer search per answer distribution with n, mean, spread and pct_favourable,
the 'ALL' = Σ municipalities margin, linear programming on the response rates' margin, a linear system for
sick leave), and the test scores what it pinned against the truth, read as the superuser only for scoring.
It must pin no cell whose true count is 1 … threshold−1; a control proves that the same attacker does pin
such cells when only the small cells themselves are hidden.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import dict_row

from trivsel import disclosure, warehouse
from trivsel.config import load_config

sys.path.insert(0, str(Path(__file__).parent))
import disclosure_attack as attack  # noqa: E402

pytestmark = pytest.mark.e2e

TRUTH_SQL = """
    with answers as (
        select municipality_code, wave, round, item_code, answer_ordinal, scale_points
        from person.fct_survey_answer
        where not is_non_answer and answer_ordinal is not null
    )
    select municipality_code, coalesce(round, wave) as period, item_code, answer_ordinal,
           max(scale_points) as k, count(*) as n
    from answers group by 1, 2, 3, 4
    union all
    select 'ALL', round, item_code, answer_ordinal, max(scale_points), count(*)
    from answers where round is not null group by 2, 3, 4
"""


def truth(conn) -> tuple[dict[tuple, list[int]], dict[str, int]]:
    """(scope, round or wave, item) → counts per ordinal 1..k, and each item's k (superuser, scoring only)."""
    rows = conn.execute(TRUTH_SQL).fetchall()
    scale = {r["item_code"]: int(r["k"]) for r in rows}
    out: dict[tuple, list[int]] = defaultdict(lambda: [])
    for r in rows:
        key = (r["municipality_code"], r["period"], r["item_code"])
        if not out[key]:
            out[key] = [0] * scale[r["item_code"]]
        out[key][int(r["answer_ordinal"]) - 1] = int(r["n"])
    return dict(out), scale


def squares_of(truth_counts: dict[tuple, list[int]]) -> dict[tuple, int]:
    """Worst case: the attacker knows each wave's sum of squares (p and Hedges' g determine it)."""
    return {k: sum((i + 1) ** 2 * c for i, c in enumerate(v)) for k, v in truth_counts.items()}


def as_evaluator(url: str):
    conn = psycopg.connect(url, autocommit=True, row_factory=dict_row)
    conn.execute("set role evaluator")
    assert conn.execute("select current_user as u").fetchone()["u"] == "evaluator"
    return conn


def published(conn) -> dict[str, list[dict]]:
    tables = ("survey_answer_distribution", "survey_item_change", "survey_response_rate",
              "absence_unit_year", "absence_change")
    return {t: conn.execute(f"select * from certified.{t}").fetchall() for t in tables}


def small_recovered(pins: dict[tuple, int], truth_counts: dict[tuple, list[int]], threshold: int) -> list:
    """The pinned cells whose true count is small: what the rule must never let out."""
    bad = []
    for (key, ordinal), value in pins.items():
        true = truth_counts.get(key, [])
        if ordinal - 1 < len(true) and 0 < true[ordinal - 1] < threshold:
            assert value == true[ordinal - 1], f"the attacker pinned {key} {ordinal} to a wrong value"
            bad.append((key, ordinal, value))
    return bad


@pytest.fixture(scope="module")
def sample(demo_warehouse):
    threshold = int(load_config().settings.get("small_cell_threshold", 5))
    counts, scale = truth(demo_warehouse)
    with as_evaluator(warehouse.url()) as conn:
        tables = published(conn)
        denied = conn.execute("select has_schema_privilege('person', 'usage') as ok").fetchone()
    assert denied["ok"] is False, "the attacker must see only what evaluator sees"
    return threshold, counts, scale, tables


def test_attacker_recovers_no_small_survey_cell(sample):
    threshold, counts, scale, tables = sample
    hidden = [r for r in tables["survey_answer_distribution"] if r["suppressed"] and not r["is_total"]]
    assert hidden, "the sample answers have small categories: some distributions must be withheld"
    pins = attack.attack_survey(tables["survey_answer_distribution"], tables["survey_item_change"],
                                squares_of(counts), scale)
    assert small_recovered(pins, counts, threshold) == []


def test_the_same_attacker_breaks_naive_suppression(sample):
    """Control: hide only the small categories and publish the rest (n, mean, pct_favourable): the attacker
    recovers small cells exactly (as the probe of issue 13 did), so a pass above is not a weak attacker."""
    threshold, counts, scale, _ = sample
    dist, changes = attack.naive_publication(counts, threshold)
    pins = attack.attack_survey(dist, changes, squares_of(counts), scale)
    assert len(small_recovered(pins, counts, threshold)) >= 10


def test_response_rate_margins_recover_nothing(sample):
    threshold, _, _, tables = sample
    rows = tables["survey_response_rate"]
    for column in ("n_respondents", "n_target_population"):
        pins = attack.attack_margin_lp(rows, "round", column)
        assert [p for p, v in pins.items() if 0 < v < threshold] == []


def test_sick_leave_suppressed_figures_are_not_in_the_published_row_space(sample):
    _, _, _, tables = sample
    s = load_config().settings
    followup = int(s.get("followup_years", [2013])[0])
    assert attack.attack_absence(tables["absence_unit_year"], tables["absence_change"],
                                 [int(y) for y in s.get("baseline_years", [])], followup) == set()


def test_means_published_where_the_rule_allows(sample):
    """Not everything is hidden: a mean over ≥ threshold respondents whose distribution does not pin a small
    category is published (issue 13: a survey mean with ≥ 5 respondents is published)."""
    threshold, counts, _, tables = sample
    published_means = [r for r in tables["survey_item_change"] if r["mean_baseline"] is not None]
    assert len(published_means) > len(tables["survey_item_change"]) // 2
    for r in published_means:
        key = (r["municipality_code"], r["baseline_round"], r["item_code"])
        assert sum(counts[key]) >= threshold
        assert disclosure.tier(counts[key], threshold) != "n_only" or r["municipality_code"] == "ALL"
