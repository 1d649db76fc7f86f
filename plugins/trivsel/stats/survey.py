"""Survey statistics: per scope (municipality or 'ALL') × item × consecutive pair of waves, does the mean
ordinal answer change? Writes reporting.survey_item_change (see docs/developing.md, Statistics).

The report's test is Welch's two-sided t-test on the ordinal answer (higher = more favourable), non-answers
left out, significant at p ≤ 0.05. Added: Mann–Whitney U (the ordinal view), Benjamini–Hochberg q-values
across the items of a scope × wave pair, and Hedges' g with an approximate 95 % confidence interval.
The math lives in pure functions (tested against scipy in tests/survey/test_survey_stats.py); `run` only
reads marts, groups, and writes.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as st

from trivsel.stats import reporting_table

TABLE = "reporting.survey_item_change"
ALL = "ALL"
SIGNIFICANCE_LEVEL = 0.05
FAVOURABLE_TOP = 2  # pct_favourable: share of answers in the two most favourable categories


@dataclass(frozen=True)
class Welch:
    t: float
    df: float
    p: float


def welch_test(a: Sequence[float], b: Sequence[float]) -> Welch:
    """Welch's unequal-variances t-test, two-sided (b − a). NaN where it is undefined (n < 2 in a group,
    or no variance in either group)."""
    x, y = np.asarray(a, float), np.asarray(b, float)
    n1, n2 = len(x), len(y)
    if n1 < 2 or n2 < 2:
        return Welch(math.nan, math.nan, math.nan)
    v1, v2 = x.var(ddof=1) / n1, y.var(ddof=1) / n2
    se2 = v1 + v2
    if se2 == 0:
        return Welch(math.nan, math.nan, math.nan)
    t = (y.mean() - x.mean()) / math.sqrt(se2)
    df = se2**2 / ((v1**2 / (n1 - 1) if v1 else 0.0) + (v2**2 / (n2 - 1) if v2 else 0.0))
    p = 2 * st.t.sf(abs(t), df)
    return Welch(float(t), float(df), float(min(p, 1.0)))


def mannwhitney_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided Mann–Whitney U p-value (asymptotic with tie correction); NaN where undefined."""
    if len(a) == 0 or len(b) == 0:
        return math.nan
    if len(set(a) | set(b)) < 2:
        return math.nan  # all answers identical: no ranks to compare
    return float(st.mannwhitneyu(a, b, alternative="two-sided", method="asymptotic").pvalue)


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini–Hochberg adjusted p-values (q-values); NaN p-values stay NaN and do not count."""
    idx = [i for i, p in enumerate(p_values) if not math.isnan(p)]
    q = [math.nan] * len(p_values)
    m = len(idx)
    if m == 0:
        return q
    order = sorted(idx, key=lambda i: p_values[i])
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, p_values[i] * m / rank)
        q[i] = min(running, 1.0)
    return q


@dataclass(frozen=True)
class Effect:
    g: float
    ci_low: float
    ci_high: float


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
    z = st.norm.ppf(0.5 + confidence / 2)
    return Effect(float(g), float(g - z * se), float(g + z * se))


def pct_favourable(values: Sequence[int], scale_points: int, top: int = FAVOURABLE_TOP) -> float:
    """Share (0–1) of answers in the `top` most favourable categories of a 1..scale_points ordinal."""
    if not values:
        return math.nan
    return sum(1 for v in values if v > scale_points - top) / len(values)


def consecutive_pairs(waves: Sequence[str]) -> list[tuple[str, str]]:
    ordered = sorted(set(waves))
    return list(zip(ordered, ordered[1:], strict=False))


@dataclass
class ItemChange:
    municipality_code: str
    item_code: str
    baseline_wave: str
    followup_wave: str
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


COLUMN_TYPES = {
    "municipality_code": "text not null", "item_code": "text not null", "baseline_wave": "text not null",
    "followup_wave": "text not null", "n_baseline": "integer not null", "n_followup": "integer not null",
    "mean_baseline": "double precision", "mean_followup": "double precision", "mean_diff": "double precision",
    "t_statistic": "double precision", "welch_df": "double precision", "p_value": "double precision",
    "significant": "boolean", "mannwhitney_p": "double precision", "q_value": "double precision",
    "effect_size": "double precision", "effect_ci_low": "double precision",
    "effect_ci_high": "double precision", "pct_favourable_baseline": "double precision",
    "pct_favourable_followup": "double precision", "low_response": "boolean not null",
}


def _num(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def item_changes(answers: dict[tuple[str, str, str], list[int]], scale_points: dict[str, int],
                 low_response: dict[tuple[str, str], bool], alpha: float = SIGNIFICANCE_LEVEL,
                 ) -> list[ItemChange]:
    """answers: (scope, item_code, wave) → ordinal answers (non-answers already left out), with scope a
    municipality code or 'ALL'. low_response: (scope, wave) → True if under the minimum response rate."""
    waves_by_scope: dict[str, set[str]] = defaultdict(set)
    items_by_scope: dict[str, set[str]] = defaultdict(set)
    for scope, item, wave in answers:
        waves_by_scope[scope].add(wave)
        items_by_scope[scope].add(item)
    out: list[ItemChange] = []
    for scope in sorted(waves_by_scope):
        for base, follow in consecutive_pairs(sorted(waves_by_scope[scope])):
            group: list[ItemChange] = []
            for item in sorted(items_by_scope[scope]):
                a = answers.get((scope, item, base), [])
                b = answers.get((scope, item, follow), [])
                if not a and not b:
                    continue
                w = welch_test(a, b)
                e = hedges_g(a, b)
                k = scale_points[item]
                mean_a = float(np.mean(a)) if a else math.nan
                mean_b = float(np.mean(b)) if b else math.nan
                group.append(ItemChange(
                    municipality_code=scope, item_code=item, baseline_wave=base, followup_wave=follow,
                    n_baseline=len(a), n_followup=len(b),
                    mean_baseline=_num(mean_a), mean_followup=_num(mean_b), mean_diff=_num(mean_b - mean_a),
                    t_statistic=_num(w.t), welch_df=_num(w.df), p_value=_num(w.p),
                    significant=None if math.isnan(w.p) else bool(w.p <= alpha),
                    mannwhitney_p=_num(mannwhitney_p(a, b)), q_value=None,
                    effect_size=_num(e.g), effect_ci_low=_num(e.ci_low), effect_ci_high=_num(e.ci_high),
                    pct_favourable_baseline=_num(pct_favourable(a, k)),
                    pct_favourable_followup=_num(pct_favourable(b, k)),
                    low_response=bool(low_response.get((scope, base), False)
                                      or low_response.get((scope, follow), False)),
                ))
            q = benjamini_hochberg([math.nan if c.p_value is None else c.p_value for c in group])
            for change, qv in zip(group, q, strict=True):
                change.q_value = _num(qv)
            out += group
    return out


ANSWERS_SQL = """
    select municipality_code, item_code, wave, answer_ordinal, scale_points
    from marts.fct_survey_answer
    where not is_non_answer and answer_ordinal is not null
    -- a fixed order: float sums (means, variances) then come out bit-identical on every re-run
    order by municipality_code, item_code, wave, answer_ordinal, respondent_key
"""
RESPONSE_SQL = "select municipality_code, wave, meets_minimum from marts.survey_response_rate"


def _rows(cur) -> list[tuple]:
    return [tuple(r.values()) if isinstance(r, dict) else tuple(r) for r in cur.fetchall()]


def run(conn) -> int:
    """Read marts.fct_survey_answer and marts.survey_response_rate, replace reporting.survey_item_change
    in one transaction. Returns the rows written."""
    answers: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    points: dict[str, int] = {}
    # A server-side cursor, read in batches: a national wave is millions of answers, and fetchall() held them
    # all as Python tuples (2 GB of RSS at 3.6 million answers, trivsel.bench).
    with conn.cursor(name="trivsel_survey_answers", withhold=True) as cur:
        cur.itersize = 20_000
        cur.execute(ANSWERS_SQL)
        for r in cur:
            code, item, wave, ordinal, k = tuple(r.values()) if isinstance(r, dict) else r
            answers[(code, item, wave)].append(int(ordinal))
            answers[(ALL, item, wave)].append(int(ordinal))
            points[item] = int(k)
    with conn.cursor() as cur:
        cur.execute(RESPONSE_SQL)
        low = {(code, wave): not meets for code, wave, meets in _rows(cur)}
    changes = item_changes(answers, points, low)
    return reporting_table.replace(conn, TABLE, ItemChange, changes, COLUMN_TYPES,
                                   ("municipality_code", "item_code", "baseline_wave", "followup_wave"))
