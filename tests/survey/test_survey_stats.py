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


def test_item_changes():
    a, b = samples(11, 31, 34)
    c, d = samples(12, 20, 22)
    answers = {("607", "1.1.1", "2012-05"): a, ("607", "1.1.1", "2013-05"): b,
               ("607", "2.4.1", "2012-05"): c, ("607", "2.4.1", "2013-05"): d,
               ("461", "2.4.1", "2012-05"): c, ("461", "2.4.1", "2013-05"): d[:11],
               ("461", "2.4.1", "2014-05"): d[11:]}
    low = {("461", "2013-05"): True}
    rows = s.item_changes(answers, {"1.1.1": 5, "2.4.1": 5}, low)
    keys = [(r.municipality_code, r.item_code, r.baseline_wave, r.followup_wave) for r in rows]
    assert keys == [("461", "2.4.1", "2012-05", "2013-05"), ("461", "2.4.1", "2013-05", "2014-05"),
                    ("607", "1.1.1", "2012-05", "2013-05"), ("607", "2.4.1", "2012-05", "2013-05")]
    r = rows[2]
    assert r.p_value == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert r.significant == (r.p_value <= 0.05)
    assert r.mean_diff == pytest.approx(np.mean(b) - np.mean(a))
    assert (r.n_baseline, r.n_followup) == (31, 34)
    q = stats.false_discovery_control([rows[2].p_value, rows[3].p_value])
    assert [rows[2].q_value, rows[3].q_value] == pytest.approx(list(q))
    assert rows[0].q_value == pytest.approx(rows[0].p_value)  # alone in its scope × wave pair
    assert [x.low_response for x in rows] == [True, True, False, False]
