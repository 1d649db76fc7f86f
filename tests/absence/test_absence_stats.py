"""Sick-leave statistics (no database): halves of the months, per-employee means, the survey's tests."""

from __future__ import annotations

import math

from scipy import stats as st

from trivsel.stats.absence import ALL_UNITS, employee_tests, split_halves


def test_split_halves():
    assert split_halves(["2014-03", "2014-01", "2014-02"]) == (["2014-01"], ["2014-03"])
    assert split_halves(["2014-01", "2014-02", "2014-03", "2014-04"]) == (["2014-01", "2014-02"],
                                                                         ["2014-03", "2014-04"])
    assert split_halves(["2014-01"]) == ([], [])


def test_employee_tests_match_scipy():
    rows = []
    base = [0.0, 1.0, 2.0, 0.0, 5.0]
    follow = [0.0, 0.0, 1.0, 0.0, 1.0]
    for i, (a, b) in enumerate(zip(base, follow, strict=True)):
        rows.append(("169", "U", "2014-01", f"e{i}", a))
        rows.append(("169", "U", "2014-02", f"e{i}", 99.0))  # middle month: left out
        rows.append(("169", "U", "2014-03", f"e{i}", b))
    tests = {t.scope: t for t in employee_tests(rows)}
    assert set(tests) == {"U", ALL_UNITS}
    t = tests["U"]
    assert (t.baseline_period, t.followup_period, t.n_baseline, t.n_followup) == ("2014-01", "2014-03", 5, 5)
    assert math.isclose(t.mean_diff, sum(follow) / 5 - sum(base) / 5)
    assert math.isclose(t.p_value, st.ttest_ind(follow, base, equal_var=False).pvalue)
    assert math.isclose(t.mannwhitney_p, st.mannwhitneyu(base, follow, alternative="two-sided",
                                                         method="asymptotic").pvalue)
    assert t.significant is False
