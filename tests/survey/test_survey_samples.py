"""The sample survey reproduces the report: recomputed from the generated files with the real parsers."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from _survey_helpers import (
    EXPOSURE_ITEMS,
    REPORT_COUNTS,
    REPORT_RATES_PCT,
    REPORT_SIGNIFICANT,
    ordinal_answers,
    parse_inbox,
    seed,
)
from scipy import stats

from trivsel.samples import survey as samples

WAVES = ("2012-05", "2013-05")
SCOPES = ("607", "169", "461", "ALL")


@pytest.fixture(scope="module")
def parsed(survey_inbox):
    rows = parse_inbox(survey_inbox)
    answers, respondents, non_answers = ordinal_answers(rows)
    return rows, answers, respondents, non_answers


def _scope(answers, scope, wave, item):
    if scope != "ALL":
        return answers[(scope, wave, item)]
    return [v for m in ("607", "169", "461") for v in answers[(m, wave, item)]]


def test_files_in_inbox_layout(survey_inbox):
    files = sorted(p.relative_to(survey_inbox).as_posix() for p in survey_inbox.rglob("*") if p.is_file())
    assert files == sorted([
        "169/survey/2012-05/besvarelser_169_2012-05.csv", "169/survey/2012-05/maalgruppe_169_2012-05.csv",
        "169/survey/2013-05/besvarelser_169_2013-05.csv", "169/survey/2013-05/maalgruppe_169_2013-05.csv",
        "607/survey/2012-05/besvarelser_607_2012-05.csv", "607/survey/2012-05/maalgruppe_607_2012-05.csv",
        "607/survey/2013-05/besvarelser_607_2013-05.csv", "607/survey/2013-05/maalgruppe_607_2013-05.csv",
        "461/survey/2012-05/trivselsmaaling_461_2012-05.xlsx",
        "461/survey/2013-05/trivselsmaaling_461_2013-05.xlsx",
    ])


def test_deterministic(survey_inbox, tmp_path):
    again = samples.generate(tmp_path)
    for path in again:
        original = survey_inbox / path.relative_to(tmp_path)
        assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(original.read_bytes()).digest(), path


def test_respondents_and_target_population_match_the_report(parsed):
    rows, _, respondents, _ = parsed
    population: dict[tuple[str, str], int] = {}
    for table in ("survey_population_csv", "survey_population_xlsx"):
        for code, _period, _row, _unit, wave, n in rows[table]:
            population[(code, wave)] = population.get((code, wave), 0) + n
    for wave in WAVES:
        population[("ALL", wave)] = sum(population[(m, wave)] for m in ("607", "169", "461"))
        respondents[("ALL", wave)] = {(m, r) for m in ("607", "169", "461") for r in respondents[(m, wave)]}
    for key, (n, target) in REPORT_COUNTS.items():
        assert (len(respondents[key]), population[key]) == (n, target), key
        assert round(100 * n / target + 1e-9) == REPORT_RATES_PCT[key], key


def test_every_item_and_the_named_ones(parsed):
    _, answers, _, _ = parsed
    items = {code for (_, _, code) in answers}
    assert items == {r["item_code"] for r in seed("survey_items.csv")}
    assert set(REPORT_SIGNIFICANT) <= items
    assert set(EXPOSURE_ITEMS) <= items
    assert 25 <= len(items) <= 40


def test_non_answers_present(parsed):
    _, _, _, non_answers = parsed
    for code in ("607", "169", "461"):
        assert non_answers[(code, "blank")] > 0, code
        assert non_answers[(code, "ved ikke")] > 0, code


def test_significance_pattern_matches_the_report(parsed):
    """Welch's two-sided t-test on the ordinal answer: significant (p ≤ 0.05) in exactly the report's scopes."""
    _, answers, _, _ = parsed
    found: dict[str, set[str]] = {}
    for item in {code for (_, _, code) in answers}:
        for scope in SCOPES:
            a = _scope(answers, scope, "2012-05", item)
            b = _scope(answers, scope, "2013-05", item)
            p = stats.ttest_ind(a, b, equal_var=False).pvalue
            if not np.isnan(p) and p <= 0.05:
                found.setdefault(item, set()).add(scope)
    assert found == REPORT_SIGNIFICANT
    assert not any("169" in scopes for scopes in found.values())


def test_exposure_items_not_significant_and_slightly_worse_mostly_in_hoeje_taastrup(parsed):
    _, answers, _, _ = parsed
    for item in EXPOSURE_ITEMS:
        a, b = _scope(answers, "ALL", "2012-05", item), _scope(answers, "ALL", "2013-05", item)
        assert np.mean(b) <= np.mean(a), item  # favourable ordinal: lower = more exposure
    ht = sum(np.mean(answers[("169", "2013-05", i)]) - np.mean(answers[("169", "2012-05", i)]) for i in EXPOSURE_ITEMS)
    assert ht < 0


def test_fredericia_job_satisfaction_90_to_100_percent(parsed):
    _, answers, _, _ = parsed
    top2 = {wave: answers[("607", wave, "4.1.1")] for wave in WAVES}
    share = {wave: sum(v >= 3 for v in vals) / len(vals) for wave, vals in top2.items()}  # 4-point scale
    assert round(100 * share["2012-05"]) == 90
    assert share["2013-05"] == 1.0
