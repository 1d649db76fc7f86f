"""The survey statistics' pure functions, against scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from trivsel.stats import survey as s


def samples(seed: int, n1: int, n2: int, k: int = 5):
    rng = np.random.default_rng(seed)
    return list(rng.integers(1, k + 1, n1)), list(rng.integers(1, k + 1, n2))


@pytest.mark.parametrize("seed,n1,n2", [(1, 31, 34), (2, 32, 11), (3, 91, 77), (4, 5, 3), (5, 2, 2)])
def test_welch_equals_scipy(seed, n1, n2):
    a, b = samples(seed, n1, n2)
    ours = s.welch_test(a, b)
    ref = stats.ttest_ind(b, a, equal_var=False)
    assert ours.t == pytest.approx(ref.statistic, rel=1e-10)
    assert ours.p == pytest.approx(ref.pvalue, rel=1e-10)
    assert ours.df == pytest.approx(ref.df, rel=1e-10)


def test_welch_undefined_cases():
    assert math.isnan(s.welch_test([1], [2, 3]).p)
    assert math.isnan(s.welch_test([5, 5, 5], [5, 5]).p)
    one_sided_variance = s.welch_test([5, 5, 5], [4, 5, 3])
    assert one_sided_variance.p == pytest.approx(stats.ttest_ind([4, 5, 3], [5, 5, 5], equal_var=False).pvalue)


@pytest.mark.parametrize("seed,n1,n2", [(1, 31, 34), (2, 32, 11), (3, 8, 9)])
def test_mannwhitney_equals_scipy(seed, n1, n2):
    a, b = samples(seed, n1, n2)
    ref = stats.mannwhitneyu(a, b, alternative="two-sided", method="asymptotic").pvalue
    assert s.mannwhitney_p(a, b) == pytest.approx(ref, rel=1e-12)
    assert math.isnan(s.mannwhitney_p([3, 3], [3]))


def test_benjamini_hochberg_equals_scipy():
    p = [0.001, 0.04, 0.03, 0.2, 0.5, 0.049, 0.9, 0.012]
    assert s.benjamini_hochberg(p) == pytest.approx(list(stats.false_discovery_control(p, method="bh")))
    with_nan = s.benjamini_hochberg([0.01, math.nan, 0.04])
    assert math.isnan(with_nan[1])
    assert with_nan[0] == pytest.approx(0.02) and with_nan[2] == pytest.approx(0.04)


def test_hedges_g():
    a, b = samples(7, 31, 34)
    x, y = np.asarray(a, float), np.asarray(b, float)
    n1, n2 = len(x), len(y)
    pooled = math.sqrt(((n1 - 1) * x.var(ddof=1) + (n2 - 1) * y.var(ddof=1)) / (n1 + n2 - 2))
    d = (y.mean() - x.mean()) / pooled
    j = math.gamma((n1 + n2 - 2) / 2) / (math.sqrt((n1 + n2 - 2) / 2) * math.gamma((n1 + n2 - 3) / 2))
    e = s.hedges_g(a, b)
    assert e.g == pytest.approx(d * j, rel=1e-3)  # the usual approximation of the exact correction
    assert e.ci_low < e.g < e.ci_high
    se = (e.ci_high - e.ci_low) / (2 * stats.norm.ppf(0.975))
    assert se == pytest.approx(math.sqrt((n1 + n2) / (n1 * n2) + e.g**2 / (2 * (n1 + n2))))
    assert math.isnan(s.hedges_g([1, 1], [1, 1]).g)


def test_pct_favourable_and_pairs():
    assert s.pct_favourable([1, 2, 3, 4, 4], 4) == pytest.approx(3 / 5)
    assert s.pct_favourable([5, 4, 3], 5) == pytest.approx(2 / 3)
    assert s.consecutive_pairs(["2013-05", "2012-05", "2014-05", "2013-05"]) == [
        ("2012-05", "2013-05"), ("2013-05", "2014-05")]


ORDER = ("baseline", "midterm", "followup")


def test_item_changes():
    a, b = samples(11, 31, 34)
    c, d = samples(12, 20, 22)
    answers = {("607", "1.1.1", "baseline"): a, ("607", "1.1.1", "followup"): b,
               ("607", "2.4.1", "baseline"): c, ("607", "2.4.1", "followup"): d,
               ("461", "2.4.1", "baseline"): c, ("461", "2.4.1", "midterm"): d[:11],
               ("461", "2.4.1", "followup"): d[11:]}
    waves = {("607", "baseline"): "2012-05", ("607", "followup"): "2013-05", ("461", "baseline"): "2012-05",
             ("461", "midterm"): "2013-05", ("461", "followup"): "2014-05"}
    responses = {("461", "midterm"): s.Response(11, 40), ("461", "baseline"): s.Response(32, 40)}
    rows = s.item_changes(answers, {"1.1.1": 5, "2.4.1": 5}, ORDER, waves, responses, minimum=0.60)
    keys = [(r.municipality_code, r.item_code, r.baseline_round, r.followup_round, r.baseline_wave,
             r.followup_wave) for r in rows]
    assert keys == [("461", "2.4.1", "baseline", "midterm", "2012-05", "2013-05"),
                    ("461", "2.4.1", "midterm", "followup", "2013-05", "2014-05"),
                    ("607", "1.1.1", "baseline", "followup", "2012-05", "2013-05"),
                    ("607", "2.4.1", "baseline", "followup", "2012-05", "2013-05"),
                    # pooled: 607's baseline → followup over both (461 has both rounds too), and 461's
                    # pairs with the midterm over 461 alone; months differ between them, so no month
                    ("ALL", "2.4.1", "baseline", "midterm", "2012-05", "2013-05"),
                    ("ALL", "1.1.1", "baseline", "followup", "2012-05", None),
                    ("ALL", "2.4.1", "baseline", "followup", "2012-05", None),
                    ("ALL", "2.4.1", "midterm", "followup", "2013-05", "2014-05")]
    r = rows[2]
    assert r.p_value == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert r.significant == (r.p_value <= 0.05)
    assert r.mean_diff == pytest.approx(np.mean(b) - np.mean(a))
    assert (r.n_baseline, r.n_followup) == (31, 34)
    q = stats.false_discovery_control([rows[2].p_value, rows[3].p_value])
    assert [rows[2].q_value, rows[3].q_value] == pytest.approx(list(q))
    assert rows[0].q_value == pytest.approx(rows[0].p_value)  # alone in its scope × round pair
    pooled = rows[6]
    assert (pooled.n_baseline, pooled.n_followup) == (40, 33)  # c twice; d and d[11:]
    assert pooled.p_value == pytest.approx(stats.ttest_ind(c + c, d + d[11:], equal_var=False).pvalue)
    # 461's midterm 11/40 = 28 % is under 60 %: every comparison it is in is low_response
    assert [x.low_response for x in rows] == [True, True, False, False, True, False, False, True]


def test_september_municipality_is_pooled_by_round_not_paired_by_month():
    """Issue 12: 101 surveys in September, the others in May. Pairing neighbouring months ran
    2012-05 → 2012-09 → 2013-05 → 2013-09; by round there is exactly one pooled pair, over the
    municipalities that have both rounds, with only their answers."""
    rng = np.random.default_rng(7)
    months = {"169": ("2012-05", "2013-05"), "607": ("2012-05", "2013-05"), "101": ("2012-09", "2013-09")}
    answers, waves = {}, {}
    for code, (base, follow) in months.items():
        waves[(code, "baseline")], waves[(code, "followup")] = base, follow
        answers[(code, "1.1.1", "baseline")] = list(rng.integers(1, 6, 30))
        answers[(code, "1.1.1", "followup")] = list(rng.integers(2, 6, 30))
    # 461 took part in the baseline only: its answers must not enter the pooled comparison
    waves[("461", "baseline")] = "2012-05"
    answers[("461", "1.1.1", "baseline")] = [1] * 40
    rows = s.item_changes(answers, {"1.1.1": 5}, ("baseline", "followup"), waves)
    pooled = [r for r in rows if r.municipality_code == s.ALL]
    assert [(r.baseline_round, r.followup_round) for r in pooled] == [("baseline", "followup")]
    [p] = pooled
    members = ("101", "169", "607")
    a = [v for m in members for v in answers[(m, "1.1.1", "baseline")]]
    b = [v for m in members for v in answers[(m, "1.1.1", "followup")]]
    assert (p.n_baseline, p.n_followup) == (90, 90)
    assert p.p_value == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue, rel=1e-12)
    assert (p.baseline_wave, p.followup_wave) == (None, None)  # May and September pooled: no one month
    own = {r.municipality_code: (r.baseline_wave, r.followup_wave) for r in rows if r.municipality_code != s.ALL}
    assert own == {"101": ("2012-09", "2013-09"), "169": ("2012-05", "2013-05"), "607": ("2012-05", "2013-05")}
    # no row pairs months of different municipalities
    for r in rows:
        assert r.municipality_code == s.ALL or (r.baseline_wave, r.followup_wave) == months[r.municipality_code]


def test_round_pairs_follow_the_configured_order():
    assert s.own_round_pairs({"followup", "baseline"}, ORDER) == [("baseline", "followup")]
    assert s.own_round_pairs({"baseline", "midterm", "followup"}, ORDER) == [
        ("baseline", "midterm"), ("midterm", "followup")]
    assert s.own_round_pairs({"followup"}, ORDER) == []
    assert s.pooled_round_pairs({"1": {"baseline", "followup"}, "2": {"baseline", "midterm", "followup"},
                                 "3": {"baseline"}}, ORDER) == [
        ("baseline", "midterm", ("2",)), ("baseline", "followup", ("1", "2")), ("midterm", "followup", ("2",))]


def test_low_response_pools_the_members():
    low = s._low
    assert not low([s.Response(30, 40), s.Response(20, 40)], 0.60)  # 50/80 = 62.5 %
    assert low([s.Response(30, 40), s.Response(10, 40)], 0.60)      # 40/80 = 50 %
    assert low([s.Response(30, None)], 0.60)                        # answers without a population
    assert not low([None], 0.60)
