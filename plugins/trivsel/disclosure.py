"""Disclosure control for survey answer distributions: how much may be published about a hidden one.

Why this module exists: a certified answer distribution with a category of 1 … threshold−1 respondents is
withheld as a whole (all or nothing, docs/disclosure.md), but the same cell (scope × item × round) is also
described by its respondent count n, its mean and pct_favourable in certified.survey_item_change, and the
t-test p-value with Hedges' g determine its spread too. An evaluator who does arithmetic solves
    Σ c_k = n,  Σ k·c_k = n·mean,  Σ k²·c_k = sum of squares,  c_(K−1) + c_K = n·pct_favourable
over non-negative integers c_k. This module enumerates exactly those solutions and returns the tier of
statistics that can be published without pinning any category whose true count is small:

- ``all``: n, mean, spread statistics and pct_favourable;
- ``no_share``: pct_favourable withheld;
- ``n_only``: only n (mean, spread and the pair's statistics withheld);
- ``whole``: no small category, the distribution itself is published (and so is everything about it,
  the Mann-Whitney p-value included, which depends on the whole distribution).

The rule is borrowed from ACRO's "safe" checks (a statistic is released only when the counts behind it
pass the threshold) and tightened for linked tables: a cell counts as disclosed when a single integer
solution remains for it, whatever else is published beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import product

import numpy as np

TIERS = ("n_only", "no_share", "all", "whole")
#: the largest grid of free category counts enumerated; a larger scale is given the safe tier n_only
MAX_GRID = 2_000_000


def has_small(counts: Sequence[int], threshold: int) -> bool:
    """True when a count is 1 … threshold−1 (0 is published: nobody is identified by it)."""
    return any(0 < c < threshold for c in counts)


def solutions(n: int, total: int, squares: int, k: int, favourable: int | None = None,
              top: int = 2) -> np.ndarray:
    """Every vector of k non-negative integer counts (ordinals 1..k) with Σc = n, Σ i·c_i = total,
    Σ i²·c_i = squares and, if given, the count of the `top` highest ordinals = favourable.

    Categories 4..k are enumerated; 1..3 follow from the three equations (a Vandermonde system), so the
    work is (n+1)^(k−3), not the number of compositions of n."""
    free = max(k - 3, 0)
    if k <= 3:
        grids = [np.zeros((1, 0), dtype=np.int64)]
    else:
        if (n + 1) ** free > MAX_GRID:
            raise OverflowError(f"{k}-point scale with n={n}: too many candidate distributions")
        grid = np.array(list(product(range(n + 1), repeat=free)), dtype=np.int64).reshape(-1, free)
        grids = [grid[grid.sum(axis=1) <= n]]
    free_cols = grids[0]
    ords = np.arange(4, k + 1, dtype=np.int64)
    a = n - free_cols.sum(axis=1)
    b = total - free_cols @ ords
    d = squares - free_cols @ (ords ** 2)
    # c1 + c2 + c3 = a; c1 + 2c2 + 3c3 = b; c1 + 4c2 + 9c3 = d
    u, v = b - a, d - a  # u = c2 + 2c3, v = 3c2 + 8c3
    two_c3 = v - 3 * u
    c3 = two_c3 // 2
    c2 = u - 2 * c3
    c1 = a - c2 - c3
    pivots = np.stack([c1, c2, c3], axis=1)[:, : min(k, 3)]
    ok = (two_c3 % 2 == 0) & (pivots >= 0).all(axis=1)
    if k < 3:  # fewer unknowns than equations: the dropped pivots must be zero
        ok &= (np.stack([c1, c2, c3], axis=1)[:, k:] == 0).all(axis=1)
    found = np.concatenate([pivots, free_cols], axis=1)[ok]
    if favourable is not None:
        found = found[found[:, max(k - top, 0):].sum(axis=1) == favourable]
    return found


def pinned_small(counts: Sequence[int], found: np.ndarray, threshold: int) -> list[int]:
    """Indexes of categories whose true count is small and that take one value in every solution."""
    out = []
    for i, c in enumerate(counts):
        if 0 < c < threshold and (len(found) == 0 or (found[:, i] == found[0, i]).all()):
            out.append(i)
    return out


def tier(counts: Sequence[int], threshold: int, top: int = 2) -> str:
    """The most that can be published about a distribution (counts per ordinal 1..k) next to its n.

    A distribution without a small category is published whole, so everything about it may be: ``whole``."""
    counts = [int(c) for c in counts]
    if not has_small(counts, threshold):
        return "whole"
    k, n = len(counts), sum(counts)
    total = sum((i + 1) * c for i, c in enumerate(counts))
    squares = sum((i + 1) ** 2 * c for i, c in enumerate(counts))
    favourable = sum(counts[max(k - top, 0):])
    try:
        if not pinned_small(counts, solutions(n, total, squares, k, favourable, top), threshold):
            return "all"
        if not pinned_small(counts, solutions(n, total, squares, k), threshold):
            return "no_share"
    except OverflowError:
        pass
    return "n_only"


def lowest(tiers: Sequence[str]) -> str:
    """The most restrictive of several tiers ('ALL' may publish no more than its least safe member)."""
    return min(tiers, key=TIERS.index) if tiers else "whole"


def counts_of(values: Sequence[int], k: int) -> list[int]:
    """Counts per ordinal 1..k of a list of ordinal answers."""
    out = [0] * k
    for v in values:
        out[int(v) - 1] += 1
    return out
