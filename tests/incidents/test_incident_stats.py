"""The exact Poisson rate test against scipy, and the rules of reporting.incident_rate_change."""

from __future__ import annotations

import math

import pytest
from scipy.stats import binomtest, poisson

from trivsel.stats.incidents import Break, YearCount, poisson_rate_test, rate_changes


@pytest.mark.parametrize("x0,t0,x1,t1", [(63, 3.0, 13, 1.0), (10, 3.0, 10, 1.0), (1, 3, 0, 1), (6, 3, 1, 1),
                                          (5, 120.5, 9, 40.0), (0, 2, 4, 1)])
def test_poisson_test_is_the_conditional_binomial_test(x0, t0, x1, t1):
    got = poisson_rate_test(x0, t0, x1, t1)
    expected = binomtest(x1, x0 + x1, t1 / (t0 + t1)).pvalue
    assert got.p_value == pytest.approx(expected, rel=1e-12)
    assert 0.0 <= got.p_value <= 1.0


def test_poisson_test_by_hand_and_ci():
    # Equal exposure, 2 vs 8: two-sided exact p = 2 * P(X <= 2 | n=10, p=.5) = 2 * 56/1024.
    res = poisson_rate_test(8, 1.0, 2, 1.0)
    assert res.p_value == pytest.approx(2 * 56 / 1024)
    # The same p-value from the Poisson likelihood directly: sum of the conditional probabilities no larger
    # than the observed one.
    n, share = 10, 0.5
    probs = [poisson.pmf(k, 1.0) * poisson.pmf(n - k, 1.0) for k in range(n + 1)]
    total = sum(probs)
    observed = probs[2]
    assert res.p_value == pytest.approx(sum(p for p in probs if p <= observed * (1 + 1e-7)) / total)
    assert res.ci_low < 0.25 < res.ci_high  # rate ratio 2/8
    assert share == 0.5
    with pytest.raises(ValueError):
        poisson_rate_test(0, 1.0, 0, 1.0)


def _yc(code, register, counts, status="reported", fte=None):
    return [YearCount(code, register, y, status if n is not None else "not_delivered", n, fte)
            for y, n in counts.items()]


def test_rate_changes_rules():
    counts = (
        _yc("169", "reported_accident", {2010: 34, 2011: 25, 2012: 4, 2013: 13})
        + _yc("461", "reported_accident", {2010: 0, 2011: 1, 2012: 0, 2013: 0})
        + _yc("607", "use_of_force", {2010: None, 2011: None, 2012: None, 2013: None})
        + _yc("607", "internal", {2010: None, 2011: None, 2012: 1, 2013: 8})
        + _yc("461", "use_of_force", {2010: 0, 2011: 0, 2012: 0, 2013: 0})
        + _yc("999", "reported_accident", {2010: 10, 2011: 10, 2012: 10, 2013: 10}, fte=50.0)
    )
    breaks = [Break("169", "reported_accident", "169_near_miss_definition_2013", 2013, "near-miss definition"),
              Break("607", "internal", "607_nestlegaarden_2011_incidents", 2011, "taken over")]
    got = {(r.municipality_code, r.register): r for r in rate_changes(counts, breaks)}

    ht = got[("169", "reported_accident")]
    assert (ht.status, ht.count_baseline, ht.count_followup) == ("tested", 63, 13)
    assert ht.exposure_unit == "years" and ht.rate_baseline == pytest.approx(21.0)
    assert ht.p_value == pytest.approx(binomtest(13, 76, 0.25).pvalue)
    assert ht.crosses_break and ht.break_id == "169_near_miss_definition_2013" and not ht.low_count

    odense = got[("461", "reported_accident")]
    assert odense.low_count and odense.rate_ratio == 0.0 and odense.p_value == pytest.approx(1.0)

    fr_force = got[("607", "use_of_force")]
    assert fr_force.status == "not_delivered" and fr_force.count_baseline is None and fr_force.p_value is None

    internal = got[("607", "internal")]
    assert internal.n_baseline_years == 1 and internal.count_baseline == 1 and internal.count_followup == 8
    assert internal.p_value == pytest.approx(binomtest(8, 9, 0.5).pvalue)
    assert not internal.crosses_break  # 2012 vs 2013 does not cross a 2011 break
    assert "delivered years only" in internal.note

    assert got[("461", "use_of_force")].status == "no_episodes"

    fte = got[("999", "reported_accident")]
    assert fte.exposure_unit == "fte_years" and fte.exposure_baseline == pytest.approx(150.0)
    assert fte.rate_baseline == pytest.approx(30 / 1.5) and fte.rate_followup == pytest.approx(10 / 0.5)
    assert fte.rate_ratio == pytest.approx(1.0) and not math.isnan(fte.p_value)


def test_quarantined_years_are_named_as_quarantined_not_as_not_delivered():
    """A register whose baseline files were all quarantined: status quarantined and the note says so year by
    year; a partly quarantined baseline year is left out of the test and named (issue 12 §5)."""
    def yc(code, year, status, n=None):
        return YearCount(code, "reported_accident", year, status, n, None)

    counts = [
        yc("905", 2010, "quarantined"), yc("905", 2011, "not_delivered"), yc("905", 2012, "quarantined"),
        yc("905", 2013, "reported", 9),
        yc("906", 2010, "reported", 12), yc("906", 2011, "partly_quarantined", 3), yc("906", 2012, "reported", 14),
        yc("906", 2013, "reported", 11),
        yc("907", 2010, "reported", 5), yc("907", 2011, "reported", 6), yc("907", 2012, "reported", 7),
        yc("907", 2013, "waiting"),
    ]
    got = {r.municipality_code: r for r in rate_changes(counts, [])}

    q = got["905"]
    assert q.status == "quarantined" and q.p_value is None and q.count_baseline is None
    assert "not delivered in the baseline" not in q.note
    assert "2010 quarantined, 2011 not delivered, 2012 quarantined" in q.note

    partly = got["906"]
    assert partly.status == "tested" and partly.n_baseline_years == 2 and partly.count_baseline == 26
    assert partly.p_value == pytest.approx(binomtest(11, 37, 1 / 3).pvalue)
    assert "2011 partly quarantined" in partly.note

    w = got["907"]
    assert w.status == "waiting" and "2013 waiting" in w.note and w.p_value is None


def mover_by_hand(y1, n1, y2, n2, confidence=0.95):
    """Li, Tang & Wong (2014) MOVER interval of λ₁/λ₂ from each rate's score interval (y + z²/2 ± z√(y + z²/4))/n."""
    from scipy.stats import norm

    z = norm.ppf(0.5 + confidence / 2)

    def score(y, n):
        m, h = y + z * z / 2, z * math.sqrt(y + z * z / 4)
        return (m - h) / n, (m + h) / n

    (l1, u1), (l2, u2), a, b = score(y1, n1), score(y2, n2), y1 / n1, y2 / n2
    low = (a * b - math.sqrt((a * b) ** 2 - l1 * u2 * (2 * a - l1) * (2 * b - u2))) / (u2 * (2 * b - u2))
    high = (a * b + math.sqrt((a * b) ** 2 - u1 * l2 * (2 * a - u1) * (2 * b - l2))) / (l2 * (2 * b - l2))
    return low, high


@pytest.mark.parametrize("x0,t0,x1,t1", [(63, 3.0, 13, 1.0), (10, 3.0, 10, 1.0), (6, 3, 1, 1), (5, 120.5, 9, 40.0)])
@pytest.mark.parametrize("confidence", [0.95, 0.99])
def test_rate_ratio_ci_is_the_mover_interval(x0, t0, x1, t1, confidence):
    got = poisson_rate_test(x0, t0, x1, t1, confidence=confidence)
    low, high = mover_by_hand(x1, t1, x0, t0, confidence)
    assert (got.ci_low, got.ci_high) == pytest.approx((low, high), rel=1e-9)
    assert got.ci_low < (x1 / t1) / (x0 / t0) < got.ci_high


def test_rate_ratio_ci_with_a_zero_count():
    none_after = poisson_rate_test(6, 3.0, 0, 1.0)
    assert none_after.ci_low == 0.0 and 0 < none_after.ci_high < math.inf
    none_before = poisson_rate_test(0, 3.0, 4, 1.0)
    assert none_before.ci_high is None and none_before.ci_low > 0  # unbounded above, never a made-up number


def test_significance_level_reaches_rate_changes():
    counts = _yc("607", "r", {2010: 20, 2011: 22, 2012: 21, 2013: 33})
    [loose] = rate_changes(counts, [], alpha=0.05)
    [strict] = rate_changes(counts, [], alpha=0.001)
    assert 0.001 < loose.p_value < 0.05 and loose.p_value == strict.p_value
    assert loose.significant and not strict.significant
    assert (loose.significance_level, strict.significance_level) == (0.05, 0.001)
    # the interval is 1 − the level: wider at 99.9 %
    assert strict.rate_ratio_ci_low < loose.rate_ratio_ci_low < loose.rate_ratio_ci_high < strict.rate_ratio_ci_high


def test_baseline_and_followup_years_reach_rate_changes():
    counts = _yc("607", "r", {2010: 5, 2011: 30, 2012: 21, 2013: 33, 2014: 9})
    [default] = rate_changes(counts, [])
    [moved] = rate_changes(counts, [], baseline=(2011, 2012), followup=(2014,))
    assert (default.count_baseline, default.count_followup) == (56, 33)
    assert (moved.count_baseline, moved.count_followup) == (51, 9)
    assert (moved.baseline_years, moved.followup_years) == ("2011-2012", "2014")


def test_small_cell_threshold_reaches_low_count():
    counts = _yc("607", "r", {2010: 4, 2011: 6, 2012: 5, 2013: 4})
    assert rate_changes(counts, [], small=5)[0].low_count
    assert not rate_changes(counts, [], small=3)[0].low_count
