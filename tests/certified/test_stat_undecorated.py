"""The statistics call scipy's tests without their `_axis_nan_policy` decorator (trivsel.stats.survey
`_undecorated`, docs/scaling.md "The fourth round (issue 15)"): the published numbers must be the same bits as
the public scipy calls give. This is the proof, on generated samples of every shape the callers pass (unit
and municipality sizes, ties, one group without spread, integer answers as lists, floats as arrays), and the
tripwire: it fails when scipy stops wrapping the tests or when the inner function's numbers differ."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats

from trivsel.stats import absence
from trivsel.stats import survey as s


def bits(x: float) -> str:
    """Exact identity of a float (repr round-trips every double; NaN as 'nan')."""
    return repr(float(x))


def public_welch(a, b) -> tuple[str, str, str]:
    """Welch as the code computed it before: the public scipy.stats.ttest_ind, behind the same guard."""
    x, y = np.asarray(a, float), np.asarray(b, float)
    if len(x) < 2 or len(y) < 2 or (x.var(ddof=1) == 0 and y.var(ddof=1) == 0):
        return bits(math.nan), bits(math.nan), bits(math.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = stats.ttest_ind(y, x, equal_var=False)
    return bits(res.statistic), bits(res.df), bits(min(res.pvalue, 1.0))


def public_mannwhitney(a, b) -> str:
    """Mann–Whitney as the code computed it before: the public scipy.stats.mannwhitneyu on the samples as
    passed, behind the same guards."""
    if len(a) == 0 or len(b) == 0 or len(set(a) | set(b)) < 2:
        return bits(math.nan)
    return bits(stats.mannwhitneyu(a, b, alternative="two-sided", method="asymptotic").pvalue)


def generated_samples(seed: int, count: int):
    """Pairs of samples shaped as the callers' (sizes 0 to a municipality's hundreds, gamma-distributed sick
    days rounded to two decimals with many zeros, and 1–5 answers as lists of ints)."""
    rng = np.random.default_rng(seed)
    for k in range(count):
        kind = k % 4
        if kind == 3:
            yield (list(rng.integers(1, 6, int(rng.integers(0, 60)))),
                   list(rng.integers(1, 6, int(rng.integers(0, 60)))))
            continue
        high = 30 if kind < 2 else 800
        n1, n2 = int(rng.integers(0, high)), int(rng.integers(0, high))
        a = np.round(rng.gamma(0.6, 1.5, n1) * (rng.random(n1) < 0.6), 2)
        b = np.round(rng.gamma(0.6, 1.5, n2), 2)
        if kind == 1 and n1:
            a = np.full(n1, a[0])  # one group without spread
        yield a, b


def test_scipy_still_wraps_the_tests_the_statistics_unwrap():
    # If scipy stops wrapping them, _undecorated falls back to the public function (correct, slower): this
    # test says so, so that the docs and the shortcut are revisited rather than silently kept.
    assert s._TTEST_IND is stats.ttest_ind.__wrapped__
    assert s._MANNWHITNEYU is stats.mannwhitneyu.__wrapped__
    assert s._TTEST_IND is not stats.ttest_ind and s._MANNWHITNEYU is not stats.mannwhitneyu


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_welch_and_mannwhitney_are_the_public_calls_bit_for_bit(seed):
    n = defined = 0
    for a, b in generated_samples(seed, 400):
        w = s.welch_test(a, b)
        assert (bits(w.t), bits(w.df), bits(w.p)) == public_welch(a, b), (len(a), len(b))
        assert bits(s.mannwhitney_p(a, b)) == public_mannwhitney(a, b), (len(a), len(b))
        n += 1
        defined += not math.isnan(w.p)
    assert n == 400 and defined > 200  # most pairs are defined tests, not the guards' NaN


def test_the_guards_are_the_former_ones():
    assert math.isnan(s.mannwhitney_p([2.0, 2.0], [2.0]))  # all identical: no ranks
    assert math.isnan(s.mannwhitney_p([], [1.0, 2.0]))
    assert not math.isnan(s.mannwhitney_p([2.0, 2.0], [3.0]))
    assert math.isnan(s.welch_test([1.0, 1.0], [4.0, 4.0]).p)  # no variance in either half
    assert math.isnan(s.welch_test([1.0], [4.0, 5.0]).p)


@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_the_cached_normal_quantile_is_scipys(confidence):
    q = 0.5 + confidence / 2
    assert bits(s._normal_quantile(q)) == bits(stats.norm.ppf(q))


def test_the_bootstrap_statistic_is_np_mean_bit_for_bit():
    rng = np.random.default_rng(5)
    for n1, n2 in [(2, 3), (7, 9), (40, 33), (513, 480)]:
        u = np.round(rng.gamma(0.6, 1.5, (100, n1)), 2)
        v = np.round(rng.gamma(0.6, 1.5, (100, n2)), 2)
        expected = np.mean(v, axis=-1) - np.mean(u, axis=-1)
        assert absence._mean_diff(u, v, axis=-1).tobytes() == expected.tobytes()
