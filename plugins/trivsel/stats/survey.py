"""Survey statistics: per scope (municipality or 'ALL') × item × pair of survey rounds, does the mean
ordinal answer change? Writes reporting.survey_item_change (see docs/developing.md, Statistics).

Rounds are data (config/municipalities.yml: settings.survey_rounds, sources.survey.rounds): a municipality
compares its own consecutive rounds, and 'ALL' compares round with round over the municipalities that have
both, so municipalities surveying in different months are pooled by round, never paired by month.

The report's test is Welch's two-sided t-test on the ordinal answer (higher = more favourable), non-answers
left out, significant at p ≤ settings.significance_level (scipy.stats.ttest_ind, equal_var=False). Added:
Mann–Whitney U (the ordinal view), Benjamini–Hochberg q-values across the items of a scope × round pair
(scipy.stats.false_discovery_control), Hedges' g with an approximate 95 % confidence interval, and power:
the minimum detectable difference (mdd) and the underpowered flag (see minimum_detectable_difference).
The math lives in pure functions (tested in tests/survey/test_survey_stats.py); `run` only reads marts,
groups, and writes. It recomputes only the scopes whose input changed (trivsel.stats.scope_state): a
municipality when its answers or response rows change, 'ALL' when any member's do, every scope when a
setting does; a municipality's comparisons read only its own answers, 'ALL''s read all.
"""

from __future__ import annotations

import functools
import logging
import math
import warnings
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as st
from statsmodels.stats.power import TTestIndPower

from trivsel import disclosure
from trivsel.stats import scope_state
from trivsel.stats import settings as rules

log = logging.getLogger(__name__)

TABLE = "reporting.survey_item_change"
ALL = "ALL"
SIGNIFICANCE_LEVEL = rules.DEFAULT_ALPHA  # the default only: run() applies settings.significance_level
FAVOURABLE_TOP = 2  # pct_favourable: share of answers in the two most favourable categories


@dataclass(frozen=True)
class Welch:
    t: float
    df: float
    p: float


def _undecorated(test: Callable) -> Callable:
    """A scipy test without its `_axis_nan_policy` decorator (functools.wraps keeps the inner function as
    `__wrapped__`); the test itself if scipy stops wrapping it.

    Why: per call, the decorator inspects the test's signature, broadcasts and reshapes its samples and
    checks them for NaN before it calls the inner function, which costs more than the test on a unit's few
    employees (docs/scaling.md, "The fourth round (issue 15)"). For the samples these tests pass (1-d,
    both of one dtype, no NaN, never too small: the callers' guards come first) the decorator hands the
    same arrays to the inner function with the test's default axis and returns its numbers unchanged, so
    the results are the same bits. tests/certified/test_stat_undecorated.py fails when either stops
    holding."""
    return getattr(test, "__wrapped__", test)


_TTEST_IND = _undecorated(st.ttest_ind)
_MANNWHITNEYU = _undecorated(st.mannwhitneyu)


def _samples(a: Sequence[float], b: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """The two samples as the decorator gives them to the inner test: 1-d arrays of one common dtype."""
    x, y = np.atleast_1d(np.asarray(a)), np.atleast_1d(np.asarray(b))
    common = np.result_type(x, y)
    return x.astype(common, copy=False), y.astype(common, copy=False)


def welch_test(a: Sequence[float], b: Sequence[float]) -> Welch:
    """Welch's unequal-variances t-test, two-sided (b − a), by scipy.stats.ttest_ind(equal_var=False). NaN
    where it is undefined (n < 2 in a group, or no variance in either group): scipy returns NaN there too,
    but warns, so the guard comes first."""
    x, y = np.asarray(a, float), np.asarray(b, float)
    if len(x) < 2 or len(y) < 2 or (x.var(ddof=1) == 0 and y.var(ddof=1) == 0):
        return Welch(math.nan, math.nan, math.nan)
    with warnings.catch_warnings():
        # one wave without spread (all the same answer): scipy warns of precision loss; the test is defined
        warnings.simplefilter("ignore", RuntimeWarning)
        res = _TTEST_IND(y, x, equal_var=False)
    return Welch(float(res.statistic), float(res.df), float(min(res.pvalue, 1.0)))


def mannwhitney_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided Mann–Whitney U p-value (asymptotic with tie correction); NaN where undefined."""
    if len(a) == 0 or len(b) == 0:
        return math.nan
    x, y = _samples(a, b)
    both = np.concatenate((x, y))
    if both.min() == both.max():
        return math.nan  # all answers identical: no ranks to compare
    return float(_MANNWHITNEYU(x, y, alternative="two-sided", method="asymptotic").pvalue)


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini–Hochberg adjusted p-values (q-values) by scipy.stats.false_discovery_control; NaN p-values
    stay NaN and do not count in the number of tests."""
    q = [math.nan] * len(p_values)
    idx = [i for i, p in enumerate(p_values) if not math.isnan(p)]
    if idx:
        adjusted = st.false_discovery_control([p_values[i] for i in idx], method="bh")
        for i, qv in zip(idx, adjusted, strict=True):
            q[i] = float(qv)
    return q


@dataclass(frozen=True)
class Effect:
    g: float
    ci_low: float
    ci_high: float


@functools.lru_cache(maxsize=16)
def _normal_quantile(q: float) -> float:
    """scipy.stats.norm.ppf(q), once per q: the same few confidence levels are asked for every scope, and
    a frozen-distribution call costs ~0.3 ms of argument handling."""
    return float(st.norm.ppf(q))


def hedges_g(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> Effect:
    """Hedges' g (b − a, pooled SD, small-sample corrected) with the usual normal-approximation CI
    (se² = (n1+n2)/(n1·n2) + g²/(2(n1+n2)))."""
    x, y = np.asarray(a, float), np.asarray(b, float)
    n1, n2 = len(x), len(y)
    if n1 < 2 or n2 < 2:
        return Effect(math.nan, math.nan, math.nan)
    pooled = math.sqrt(((n1 - 1) * x.var(ddof=1) + (n2 - 1) * y.var(ddof=1)) / (n1 + n2 - 2))
    if pooled == 0:
        return Effect(math.nan, math.nan, math.nan)
    d = (y.mean() - x.mean()) / pooled
    g = d * (1 - 3 / (4 * (n1 + n2) - 9))
    se = math.sqrt((n1 + n2) / (n1 * n2) + g * g / (2 * (n1 + n2)))
    z = _normal_quantile(0.5 + confidence / 2)
    return Effect(float(g), float(g - z * se), float(g + z * se))


@dataclass(frozen=True)
class Power:
    mdd: float
    underpowered: bool


def detectable_effects(pairs: Iterable[tuple[int, int]], alpha: float, power: float = rules.DEFAULT_POWER,
                       ) -> dict[tuple[int, int], float]:
    """For each (n1, n2): the smallest standardised difference (Cohen's d) that a two-sided two-sample
    t-test with n1 and n2 answers detects with probability `power` at level `alpha`, i.e. statsmodels'
    TTestIndPower.power solved for the effect size. It is the pooled-variance t-test's power, the usual
    planning approximation for Welch's test (the two agree closely unless both the n's and the variances
    are very unequal). NaN for n < 2, or where the noncentral t gives no finite power.

    Solved for all pairs at once, by bisection on the vectorised TTestIndPower.power: its solve_power
    costs ~80 ms a call, minutes for a national month's thousands of distinct n's. The bracket starts at
    the z-test's effect (the t-test needs at least that) and widens until it holds the target power."""
    wanted = sorted({(int(a), int(b)) for a, b in pairs})
    out = {pair: math.nan for pair in wanted}
    usable = [pair for pair in wanted if pair[0] >= 2 and pair[1] >= 2]
    if not usable:
        return out
    n1 = np.array([a for a, _ in usable], float)
    ratio = np.array([b for _, b in usable], float) / n1
    engine = TTestIndPower()

    def gap(d: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            return np.asarray(engine.power(d, n1, alpha, ratio=ratio, alternative="two-sided"), float) - power

    lo = (st.norm.ppf(1 - alpha / 2) + st.norm.ppf(power)) * np.sqrt(1 / n1 + 1 / (n1 * ratio)) * 0.999
    hi = lo * 1.25
    for _ in range(40):
        short = gap(hi) < 0  # NaN (no finite power) counts as reached: checked at the end
        if not short.any():
            break
        hi = np.where(short, hi * 1.5, hi)
    for _ in range(60):
        mid = (lo + hi) / 2
        below = gap(mid) < 0
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    d = (lo + hi) / 2
    solved = np.abs(gap(d)) < 1e-6
    for pair, value, ok in zip(usable, d, solved, strict=True):
        out[pair] = float(value) if ok else math.nan
    return out


def detectable_effect(n1: int, n2: int, alpha: float, power: float = rules.DEFAULT_POWER) -> float:
    """detectable_effects for one pair of n's."""
    return detectable_effects([(n1, n2)], alpha, power)[(n1, n2)]


def pooled_sd(a: Sequence[float], b: Sequence[float]) -> float:
    """The pooled standard deviation of two samples; NaN with fewer than 2 values in either."""
    n1, n2 = len(a), len(b)
    if n1 < 2 or n2 < 2:
        return math.nan
    x, y = np.asarray(a, float), np.asarray(b, float)
    return math.sqrt(((n1 - 1) * x.var(ddof=1) + (n2 - 1) * y.var(ddof=1)) / (n1 + n2 - 2))


def power_of(n1: int, n2: int, sd: float, d: float, meaningful_effect: float) -> Power:
    """mdd = d × the pooled SD; underpowered when d is larger than the meaningful effect (or undefined)."""
    if math.isnan(d):
        return Power(math.nan, True)
    return Power(d * sd, bool(d > meaningful_effect))


def minimum_detectable_difference(a: Sequence[float], b: Sequence[float], alpha: float = SIGNIFICANCE_LEVEL,
                                  power: float = rules.DEFAULT_POWER,
                                  meaningful_effect: float = rules.DEFAULT_MEANINGFUL_EFFECT_SIZE) -> Power:
    """How big a change in the mean answer the comparison could have detected: mdd = detectable_effect(n1,
    n2) × the pooled SD of the two waves, in answer-scale points (so "not significant" reads against it).
    underpowered: the detectable standardised difference is larger than `meaningful_effect`
    (settings.meaningful_effect_size, Cohen's d; 0.5 = a 'medium' effect), i.e. a change that size could
    well go unnoticed; always true with fewer than 2 answers in a wave. mdd is NaN where the SD is undefined."""
    n1, n2 = len(a), len(b)
    return power_of(n1, n2, pooled_sd(a, b), detectable_effect(n1, n2, alpha, power), meaningful_effect)


def pct_favourable(values: Sequence[int], scale_points: int, top: int = FAVOURABLE_TOP) -> float:
    """Share (0–1) of answers in the `top` most favourable categories of a 1..scale_points ordinal."""
    if not values:
        return math.nan
    return sum(1 for v in values if v > scale_points - top) / len(values)


def consecutive_pairs(waves: Sequence[str]) -> list[tuple[str, str]]:
    """Consecutive pairs of sorted distinct values (kept for callers that pair one municipality's own months)."""
    ordered = sorted(set(waves))
    return list(zip(ordered, ordered[1:], strict=False))


def own_round_pairs(rounds: Iterable[str], order: Sequence[str]) -> list[tuple[str, str]]:
    """A municipality's own comparisons: its rounds, consecutive in the configured order (settings.survey_rounds).
    A round it did not survey in is skipped over, so baseline → followup stands where a midterm is missing."""
    present = set(rounds)
    ordered = [r for r in order if r in present]
    return list(zip(ordered, ordered[1:], strict=False))


def pooled_round_pairs(rounds_by_municipality: dict[str, set[str]], order: Sequence[str],
                       ) -> list[tuple[str, str, tuple[str, ...]]]:
    """The pooled ('ALL') comparisons: round with round, never month with month. Every pair some municipality
    compares on its own, each over the municipalities that have both rounds (only theirs)."""
    pairs = {pair for rounds in rounds_by_municipality.values() for pair in own_round_pairs(rounds, order)}
    rank = {r: i for i, r in enumerate(order)}
    out = []
    for base, follow in sorted(pairs, key=lambda p: (rank[p[0]], rank[p[1]])):
        members = tuple(sorted(m for m, rounds in rounds_by_municipality.items() if {base, follow} <= rounds))
        out.append((base, follow, members))
    return out


@dataclass
class ItemChange:
    municipality_code: str
    item_code: str
    baseline_round: str
    followup_round: str
    baseline_wave: str | None  # null for 'ALL' where its municipalities surveyed the round in different months
    followup_wave: str | None
    n_baseline: int
    n_followup: int
    mean_baseline: float | None
    mean_followup: float | None
    mean_diff: float | None
    t_statistic: float | None
    welch_df: float | None
    p_value: float | None
    significant: bool | None
    mannwhitney_p: float | None
    q_value: float | None
    effect_size: float | None
    effect_ci_low: float | None
    effect_ci_high: float | None
    pct_favourable_baseline: float | None
    pct_favourable_followup: float | None
    low_response: bool
    mdd: float | None = None
    underpowered: bool = True
    significance_level: float = SIGNIFICANCE_LEVEL
    #: trivsel.disclosure tier of each wave's distribution: what certified may publish beside its n
    disclosure_baseline: str = "whole"
    disclosure_followup: str = "whole"


COLUMN_TYPES = {
    "municipality_code": "text not null", "item_code": "text not null", "baseline_round": "text not null",
    "followup_round": "text not null", "baseline_wave": "text", "followup_wave": "text", "n_baseline": "integer not null", "n_followup": "integer not null",
    "mean_baseline": "double precision", "mean_followup": "double precision", "mean_diff": "double precision",
    "t_statistic": "double precision", "welch_df": "double precision", "p_value": "double precision",
    "significant": "boolean", "mannwhitney_p": "double precision", "q_value": "double precision",
    "effect_size": "double precision", "effect_ci_low": "double precision",
    "effect_ci_high": "double precision", "pct_favourable_baseline": "double precision",
    "pct_favourable_followup": "double precision", "low_response": "boolean not null",
    "mdd": "double precision", "underpowered": "boolean not null", "significance_level": "double precision not null",
    "disclosure_baseline": "text not null", "disclosure_followup": "text not null",
}


def _num(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


@dataclass(frozen=True)
class Response:
    """Respondents and target population of one municipality in one round (target None: no population)."""
    respondents: int
    target: int | None


def _low(responses: Sequence[Response | None], minimum: float) -> bool:
    """Under the minimum response rate, pooled over the municipalities given. A round with answers but no
    population is 'unknown', which counts as low (as marts.survey_response_rate's meets_minimum false)."""
    known = [r for r in responses if r is not None]
    if not known:
        return False
    if any(r.target is None for r in known):
        return True
    target = sum(r.target or 0 for r in known)
    return target == 0 or sum(r.respondents for r in known) / target < minimum


def wave_tier(answers: dict[tuple[str, str, str], list[int]], members: Sequence[str], item: str, rnd: str,
              k: int, threshold: int) -> str:
    """The disclosure tier of one wave of one comparison (trivsel.disclosure): of its pooled answers, and for
    'ALL' no more than its least safe member's."""
    pooled = [v for m in members for v in answers.get((m, item, rnd), [])]
    tiers = [disclosure.tier(disclosure.counts_of(pooled, k), threshold)]
    if len(members) > 1:
        tiers += [disclosure.tier(disclosure.counts_of(answers.get((m, item, rnd), []), k), threshold)
                  for m in members]
    return disclosure.lowest(tiers)


def item_changes(answers: dict[tuple[str, str, str], list[int]], scale_points: dict[str, int],
                 order: Sequence[str], waves: dict[tuple[str, str], str],
                 responses: dict[tuple[str, str], Response] | None = None,
                 minimum: float = 0.60, alpha: float = SIGNIFICANCE_LEVEL,
                 threshold: int = 5, power: float = rules.DEFAULT_POWER,
                 meaningful_effect: float = rules.DEFAULT_MEANINGFUL_EFFECT_SIZE,
                 scopes: Collection[str] | None = None) -> list[ItemChange]:
    """answers: (municipality, item_code, round) → ordinal answers (non-answers already left out).
    order: the rounds in their configured order. waves: (municipality, round) → its wave month.
    responses: (municipality, round) → respondents and target, for low_response (below `minimum`).
    alpha, threshold, power, meaningful_effect: settings.significance_level, small_cell_threshold, power,
    meaningful_effect_size (trivsel.stats.settings). scopes: only these scopes' comparisons (None: all); a
    municipality's need only its own answers, 'ALL' needs every municipality's.

    Each municipality compares its own consecutive rounds; 'ALL' compares round with round over the
    municipalities that have both, with only their answers: a municipality surveying in September is pooled
    with the others' May by round, and never paired with a neighbouring month."""
    responses = responses or {}
    rounds_by_municipality: dict[str, set[str]] = defaultdict(set)
    items: set[str] = set()
    for code, item, rnd in answers:
        rounds_by_municipality[code].add(rnd)
        items.add(item)
    comparisons: list[tuple[str, str, str, tuple[str, ...]]] = [
        (code, base, follow, (code,)) for code in sorted(rounds_by_municipality)
        for base, follow in own_round_pairs(rounds_by_municipality[code], order)]
    comparisons += [(ALL, base, follow, members)
                    for base, follow, members in pooled_round_pairs(rounds_by_municipality, order)]
    if scopes is not None:
        comparisons = [c for c in comparisons if c[0] in scopes]
    out: list[ItemChange] = []
    spreads: list[float] = []  # the pooled SD of each comparison in out, for its mdd
    for scope, base, follow, members in comparisons:
        base_months = {waves.get((m, base)) for m in members}
        follow_months = {waves.get((m, follow)) for m in members}
        base_wave = base_months.pop() if len(base_months) == 1 else None
        follow_wave = follow_months.pop() if len(follow_months) == 1 else None
        low = bool(_low([responses.get((m, base)) for m in members], minimum)
                   or _low([responses.get((m, follow)) for m in members], minimum))
        group: list[ItemChange] = []
        for item in sorted(items):
            a = [v for m in members for v in answers.get((m, item, base), [])]
            b = [v for m in members for v in answers.get((m, item, follow), [])]
            if not a and not b:
                continue
            w = welch_test(a, b)
            e = hedges_g(a, b)
            spreads.append(pooled_sd(a, b))
            k = scale_points[item]

            mean_a = float(np.mean(a)) if a else math.nan
            mean_b = float(np.mean(b)) if b else math.nan
            group.append(ItemChange(
                municipality_code=scope, item_code=item, baseline_round=base, followup_round=follow,
                baseline_wave=base_wave, followup_wave=follow_wave,
                n_baseline=len(a), n_followup=len(b),
                mean_baseline=_num(mean_a), mean_followup=_num(mean_b), mean_diff=_num(mean_b - mean_a),
                t_statistic=_num(w.t), welch_df=_num(w.df), p_value=_num(w.p),
                significant=None if math.isnan(w.p) else bool(w.p <= alpha),
                mannwhitney_p=_num(mannwhitney_p(a, b)), q_value=None,
                effect_size=_num(e.g), effect_ci_low=_num(e.ci_low), effect_ci_high=_num(e.ci_high),
                pct_favourable_baseline=_num(pct_favourable(a, k)),
                pct_favourable_followup=_num(pct_favourable(b, k)),
                low_response=low, significance_level=alpha,
                disclosure_baseline=wave_tier(answers, members, item, base, k, threshold),
                disclosure_followup=wave_tier(answers, members, item, follow, k, threshold),
            ))
        q = benjamini_hochberg([math.nan if c.p_value is None else c.p_value for c in group])
        for change, qv in zip(group, q, strict=True):
            change.q_value = _num(qv)
        out += group
    # power for every comparison at once: the detectable effect depends on the n's only
    effects = detectable_effects(((c.n_baseline, c.n_followup) for c in out), alpha, power)
    for change, sd in zip(out, spreads, strict=True):
        pw = power_of(change.n_baseline, change.n_followup, sd,
                      effects[(change.n_baseline, change.n_followup)], meaningful_effect)
        change.mdd, change.underpowered = _num(pw.mdd), pw.underpowered
    return out


#: the answers as counts per ordinal: every statistic of a comparison is a function of its answers' multiset,
#: and the answers expanded in ordinal order are the list the row-by-row read gave (bit-identical sums), at a
#: fraction of the rows. Only the scopes recomputed: all municipalities when 'ALL' is, else just theirs.
ANSWERS_SQL = """
    select municipality_code, item_code, round, answer_ordinal, scale_points, count(*)::int as n
    from person.fct_survey_answer
    where not is_non_answer and answer_ordinal is not null and round is not null
        and (%(all)s or municipality_code = any(%(codes)s))
    group by municipality_code, item_code, round, answer_ordinal, scale_points
    -- a fixed order: float sums (means, variances) then come out bit-identical on every re-run
    order by municipality_code, item_code, round, answer_ordinal
"""
DOMAIN = "survey"
#: bump when the results change for the same input (trivsel.stats.scope_state): every scope is recomputed
VERSION = "survey-1"
#: what a municipality's comparisons read (the fingerprint of its scope, trivsel.stats.scope_state)
INPUT_PARTS = (
    scope_state.Part("person.fct_survey_answer", ("item_code", "round", "answer_ordinal", "scale_points"),
                     "not is_non_answer and answer_ordinal is not null and round is not null",
                     delivery_column="delivery_id"),
    scope_state.Part("marts.survey_response_rate",
                     ("round", "round_order", "wave", "respondents", "target_population"),
                     "municipality_code <> 'ALL' and unit_name is null and round is not null"),
)
#: one row per municipality and round it has answers or a population for: its month, the round's position in
#: settings.survey_rounds, and the respondents and target for low_response
RESPONSE_SQL = """
    select municipality_code, round, round_order, wave, respondents, target_population, minimum_response_rate
    from marts.survey_response_rate
    where municipality_code <> 'ALL' and unit_name is null and round is not null
"""

UNROUNDED_SQL = """
    select municipality_code, wave from marts.survey_response_rate
    where municipality_code <> 'ALL' and unit_name is null and round is null
    order by municipality_code, wave
"""


def _rows(cur) -> list[tuple]:
    return [tuple(r.values()) if isinstance(r, dict) else tuple(r) for r in cur.fetchall()]


def run(conn, full: bool = False, run_id: str | None = None) -> int:
    """Read person.fct_survey_answer (answers by round), the configured rounds and marts.survey_response_rate;
    recompute the scopes whose input changed (all when `full`) into reporting.survey_item_change, in one
    transaction (trivsel.stats.scope_state). Returns the rows written."""
    with conn.cursor() as cur:
        cur.execute(RESPONSE_SQL)
        response_rows = _rows(cur)
        cur.execute(UNROUNDED_SQL)
        for code, wave in _rows(cur):
            log.warning("survey: municipality %s wave %s is none of its rounds (sources.survey.rounds in "
                        "config/municipalities.yml): loaded, compared with nothing", code, wave)
    order = [name for name, _ in sorted({(r[1], int(r[2])) for r in response_rows}, key=lambda x: (x[1], x[0]))]
    waves = {(code, rnd): wave for code, rnd, _, wave, *_ in response_rows}
    responses = {(code, rnd): Response(int(n), None if t is None else int(t))
                 for code, rnd, _, _, n, t, _ in response_rows}
    config = rules.load()
    # the minimum the marts applied (settings.minimum_response_rate, through dbt): one rule in both layers
    minimum = float(response_rows[0][6]) if response_rows else config.minimum_response_rate
    settings = {"significance_level": config.significance_level, "small_cell_threshold": config.small_cell_threshold,
                "power": config.power, "meaningful_effect_size": config.meaningful_effect_size,
                "minimum_response_rate": minimum, "survey_rounds": order}
    # a municipality without answers has no comparisons: the scopes are those with answers
    prints = scope_state.fingerprints(conn, DOMAIN, VERSION, settings, INPUT_PARTS, scopes_from=(0,), rescan=full)
    if prints:
        prints[ALL] = scope_state.pooled(prints)
    p = scope_state.plan(conn, DOMAIN, prints, [(TABLE, ItemChange)], full)
    changes: list[ItemChange] = []
    if p.full or p.recompute:
        every = p.full or ALL in p.recompute
        answers: dict[tuple[str, str, str], list[int]] = defaultdict(list)
        points: dict[str, int] = {}
        # A server-side cursor, read in batches: a national wave is millions of answers (as counts per ordinal
        # now, but bounded all the same).
        with conn.cursor(name="trivsel_survey_answers", withhold=True) as cur:
            cur.itersize = 20_000
            cur.execute(ANSWERS_SQL, {"all": every, "codes": list(p.recompute)})
            for r in cur:
                code, item, rnd, ordinal, k, n = tuple(r.values()) if isinstance(r, dict) else r
                answers[(code, item, rnd)].extend([int(ordinal)] * int(n))
                points[item] = int(k)
        changes = item_changes(answers, points, order, waves, responses, minimum, alpha=config.significance_level,
                               threshold=config.small_cell_threshold, power=config.power,
                               meaningful_effect=config.meaningful_effect_size,
                               scopes=None if p.full else set(p.recompute))
    (n,) = scope_state.write(conn, p, [scope_state.Output(
        TABLE, ItemChange, changes, COLUMN_TYPES,
        ("municipality_code", "item_code", "baseline_round", "followup_round"))], run_id)
    return n
