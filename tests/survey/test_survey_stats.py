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


def textbook_welch(a, b):
    """Welch (1947) by hand: t = (ȳ − x̄) / √(s₁²/n₁ + s₂²/n₂), Welch–Satterthwaite df, two-sided p from t."""
    x, y = np.asarray(a, float), np.asarray(b, float)
    v1, v2 = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    t = (y.mean() - x.mean()) / math.sqrt(v1 + v2)
    df = (v1 + v2) ** 2 / (v1**2 / (len(x) - 1) + v2**2 / (len(y) - 1))
    return t, df, 2 * stats.t.sf(abs(t), df)


@pytest.mark.parametrize("seed,n1,n2", [(1, 31, 34), (2, 32, 11), (3, 91, 77), (4, 5, 3), (5, 2, 2)])
def test_welch_equals_the_textbook_formula(seed, n1, n2):
    a, b = samples(seed, n1, n2)
    if np.var(a) == 0 and np.var(b) == 0:
        pytest.fail("the seed gave two constant samples: pick another")
    ours = s.welch_test(a, b)
    t, df, p = textbook_welch(a, b)
    assert ours.t == pytest.approx(t, rel=1e-10)
    assert ours.df == pytest.approx(df, rel=1e-10)
    assert ours.p == pytest.approx(p, rel=1e-10)


def test_welch_undefined_cases():
    assert math.isnan(s.welch_test([1], [2, 3]).p)
    assert math.isnan(s.welch_test([5, 5, 5], [5, 5]).p)
    one_sided_variance = s.welch_test([5, 5, 5], [4, 5, 3])
    # one wave without spread: t = (4 − 5)/√(1/3), df = n₂ − 1 = 2
    assert one_sided_variance.t == pytest.approx(-math.sqrt(3))
    assert one_sided_variance.df == pytest.approx(2)
    assert one_sided_variance.p == pytest.approx(2 * stats.t.sf(math.sqrt(3), 2))


@pytest.mark.parametrize("seed,n1,n2", [(1, 31, 34), (2, 32, 11), (3, 8, 9)])
def test_mannwhitney_equals_scipy(seed, n1, n2):
    a, b = samples(seed, n1, n2)
    ref = stats.mannwhitneyu(a, b, alternative="two-sided", method="asymptotic").pvalue
    assert s.mannwhitney_p(a, b) == pytest.approx(ref, rel=1e-12)
    assert math.isnan(s.mannwhitney_p([3, 3], [3]))


def textbook_bh(p):
    """Benjamini & Hochberg (1995) step-up by hand: q₍ᵢ₎ = min over j ≥ i of p₍ⱼ₎·m/j, capped at 1."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    q = [0.0] * m
    running = 1.0
    for rank in range(m, 0, -1):
        running = min(running, p[order[rank - 1]] * m / rank)
        q[order[rank - 1]] = running
    return q


def test_benjamini_hochberg_equals_the_step_up_by_hand():
    p = [0.001, 0.04, 0.03, 0.2, 0.5, 0.049, 0.9, 0.012]
    assert s.benjamini_hochberg(p) == pytest.approx(textbook_bh(p), rel=1e-12)
    # NaN p-values (undefined tests) stay NaN and are not counted in m: two tests, not three
    with_nan = s.benjamini_hochberg([0.01, math.nan, 0.04])
    assert math.isnan(with_nan[1])
    assert with_nan[0] == pytest.approx(0.02) and with_nan[2] == pytest.approx(0.04)
    assert all(math.isnan(q) for q in s.benjamini_hochberg([math.nan, math.nan]))


def nct_power(d, n1, n2, alpha):
    """The two-sided two-sample t-test's power at standardised difference d, from the noncentral t."""
    df = n1 + n2 - 2
    nc = d * math.sqrt(n1 * n2 / (n1 + n2))
    crit = stats.t.ppf(1 - alpha / 2, df)
    return stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc)


@pytest.mark.parametrize("n1,n2,alpha", [(64, 64, 0.05), (11, 9, 0.05), (31, 120, 0.01), (2, 3, 0.10)])
def test_detectable_effect_has_80_percent_power(n1, n2, alpha):
    d = s.detectable_effect(n1, n2, alpha)
    assert nct_power(d, n1, n2, alpha) == pytest.approx(0.80, abs=1e-4)
    assert nct_power(0.9 * d, n1, n2, alpha) < 0.78  # a smaller difference: less power


def test_detectable_effect_cohens_table():
    # Cohen (1988), Table 2.4.1: 64 per group detect d = 0.5 at 80 % power, two-sided α = .05
    assert s.detectable_effect(64, 64, 0.05) == pytest.approx(0.5, abs=0.005)
    assert math.isnan(s.detectable_effect(1, 10, 0.05))


def test_minimum_detectable_difference_and_underpowered():
    a, b = samples(11, 40, 36)
    x, y = np.asarray(a, float), np.asarray(b, float)
    pooled = math.sqrt((39 * x.var(ddof=1) + 35 * y.var(ddof=1)) / 74)
    pw = s.minimum_detectable_difference(a, b, 0.05)
    assert pw.mdd == pytest.approx(s.detectable_effect(40, 36, 0.05) * pooled, rel=1e-12)
    assert pw.underpowered  # d ≈ 0.65 > 0.5 with ~40 answers a wave
    assert not s.minimum_detectable_difference(a * 4, b * 4, 0.05).underpowered  # 160 / 144: d ≈ 0.32
    # the meaningful effect size decides the flag: a lenient one turns it off
    assert not s.minimum_detectable_difference(a, b, 0.05, meaningful_effect=0.8).underpowered
    # 11 respondents: "not significant" says little, and the flag says so
    few = s.minimum_detectable_difference(a[:6], b[:5], 0.05)
    assert few.underpowered and few.mdd > pw.mdd
    assert s.minimum_detectable_difference([3], [4, 5], 0.05).underpowered
    assert math.isnan(s.minimum_detectable_difference([3], [4, 5], 0.05).mdd)


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


def test_significance_level_and_power_settings_reach_item_changes():
    """settings.significance_level, power and meaningful_effect_size change the survey statistics."""
    rng = np.random.default_rng(3)
    a, b = list(rng.integers(1, 6, 60)), list(rng.integers(2, 6, 60))
    answers = {("607", "1.1.1", "baseline"): a, ("607", "1.1.1", "followup"): b}
    waves = {("607", "baseline"): "2012-05", ("607", "followup"): "2013-05"}

    def one(**kw):
        return next(r for r in s.item_changes(answers, {"1.1.1": 5}, ("baseline", "followup"), waves, **kw)
                    if r.municipality_code == "607")

    p = one().p_value
    assert 0.001 < p < 0.05  # the seed's difference: significant at 5 %, not at 0.1 %
    assert one(alpha=0.05).significant and one(alpha=0.05).significance_level == 0.05
    assert not one(alpha=0.001).significant and one(alpha=0.001).significance_level == 0.001
    # a stricter level or more power needs a bigger difference to be detectable
    assert one(alpha=0.001).mdd > one(alpha=0.05).mdd
    assert one(power=0.95).mdd > one(power=0.80).mdd
    d = s.detectable_effect(60, 60, 0.05)
    assert one(meaningful_effect=d + 0.01).underpowered is False
    assert one(meaningful_effect=d - 0.01).underpowered is True


def test_minimum_response_rate_reaches_low_response():
    """settings.minimum_response_rate (the marts' minimum, passed on by run()): 28/40 = 70 % is low at 75 %."""
    a, b = samples(21, 28, 30)
    answers = {("607", "1.1.1", "baseline"): a, ("607", "1.1.1", "followup"): b}
    waves = {("607", "baseline"): "2012-05", ("607", "followup"): "2013-05"}
    responses = {("607", "baseline"): s.Response(28, 40), ("607", "followup"): s.Response(30, 40)}

    def low(minimum):
        rows = s.item_changes(answers, {"1.1.1": 5}, ("baseline", "followup"), waves, responses, minimum=minimum)
        return {r.municipality_code: r.low_response for r in rows}

    assert low(0.60) == {"607": False, "ALL": False}
    assert low(0.75) == {"607": True, "ALL": True}


def test_detectable_effects_at_once_equal_statsmodels_solve_power():
    """The vectorised bisection gives what statsmodels' own (slow) solver gives, pair by pair."""
    from statsmodels.stats.power import TTestIndPower

    pairs = [(64, 64), (11, 9), (31, 120), (2, 3), (400, 380), (1, 7)]
    got = s.detectable_effects(pairs, 0.05, 0.8)
    for n1, n2 in pairs[:-1]:
        want = TTestIndPower().solve_power(effect_size=None, nobs1=n1, ratio=n2 / n1, alpha=0.05, power=0.8)
        assert got[(n1, n2)] == pytest.approx(float(want), rel=1e-4)  # its solver stops at ~1e-6
    assert math.isnan(got[(1, 7)])
