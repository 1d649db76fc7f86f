"""trivsel.disclosure without a database: the solver against brute force, and the tiers' promise."""

from __future__ import annotations

import random
from itertools import product

import pytest

from trivsel import disclosure


def brute(n: int, k: int) -> list[tuple[int, ...]]:
    return [c for c in product(range(n + 1), repeat=k) if sum(c) == n]


def stats(c) -> tuple[int, int, int]:
    return (sum(c), sum((i + 1) * x for i, x in enumerate(c)), sum((i + 1) ** 2 * x for i, x in enumerate(c)))


@pytest.mark.parametrize("k", [2, 3, 4, 5])
def test_solutions_are_exactly_the_brute_force_ones(k):
    rng = random.Random(k)
    for _ in range(25):
        n = rng.randint(1, 9)
        c = tuple(rng.choice(brute(n, k)))
        _, s, q = stats(c)
        fav = sum(c[-2:])
        expected = {x for x in brute(n, k) if stats(x)[1:] == (s, q)}
        assert {tuple(x) for x in disclosure.solutions(n, s, q, k)} == expected
        assert {tuple(x) for x in disclosure.solutions(n, s, q, k, fav)} == {x for x in expected if sum(x[-2:]) == fav}


def test_tiers_keep_every_small_category_open():
    """Whatever tier the rule gives, brute force over what that tier publishes leaves each small category
    with two or more possible values."""
    rng = random.Random(7)
    seen = set()
    for _ in range(300):
        k = rng.choice((4, 5))
        n = rng.randint(5, 12)
        c = tuple(rng.choice(brute(n, k)))
        t = disclosure.tier(c, 5)
        seen.add(t)
        if t in ("whole", "n_only"):
            continue
        _, s, q = stats(c)
        same = [x for x in brute(n, k) if stats(x)[1:] == (s, q) and (t == "no_share" or sum(x[-2:]) == sum(c[-2:]))]
        for i, v in enumerate(c):
            if 0 < v < 5:
                assert len({x[i] for x in same}) >= 2, (c, t, i)
    assert seen >= {"whole", "all", "no_share", "n_only"}


def test_examples():
    assert disclosure.tier([20, 1, 0, 0, 0], 5) == "n_only"  # n and the mean alone give the 1
    assert disclosure.tier([0, 5, 10, 12, 6], 5) == "whole"
    assert disclosure.tier([3, 20], 5) == "n_only"  # two categories: the mean is the distribution
    assert disclosure.lowest(["whole", "all", "no_share"]) == "no_share"
    assert disclosure.counts_of([1, 1, 3, 5], 5) == [2, 0, 1, 0, 1]
