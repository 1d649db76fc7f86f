"""Did the incident rate change between the baseline years and the follow-up year? Writes
reporting.incident_rate_change.

Per municipality and register, the counted episodes of the baseline years (settings.baseline_years) are
compared with those of the follow-up years (settings.followup_years) by the exact conditional Poisson rate
test, statsmodels' test_poisson_2indep(method='exact-cond'): given the total n = x_baseline + x_followup,
x_followup is Binomial(n, T_followup / (T_baseline + T_followup)) under equal rates, T being the exposure
(FTE-years where the FTE is known for every year compared, else years); two-sided by minimum likelihood.
Significant at p ≤ settings.significance_level. The rate ratio (follow-up / baseline) has a
(1 − significance_level) interval from statsmodels' confint_poisson_2indep(method='mover'): the MOVER
interval (Li, Tang & Wong 2014) built from each rate's score interval. statsmodels has no exact-conditional
interval; of its methods, MOVER is the one that stays defined with a zero count (lower limit 0 when the
follow-up has no episodes, no upper limit when the baseline has none).

Nothing is computed from what was not delivered, nor from what was quarantined: only 'reported' years
(marts.incident_rate_year) count. A register with no usable baseline or follow-up year gets a row saying
why, year by year: status 'not_delivered' when nothing came, 'quarantined' / 'partly_quarantined' /
'waiting' when files came but were rejected, are incomplete or held (four different facts, never merged
into "not delivered"). Where only some baseline years are usable, those are used and the note names them
and the status of the others. Counts below settings.small_cell_threshold are flagged (low_count), and a comparison that
crosses a recorded comparability break names it (break_id) — the p-value is then not evidence of change.

Only the municipalities whose rate years, breaks or settings changed are recomputed (trivsel.stats.scope_state).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from statsmodels.stats.rates import confint_poisson_2indep, test_poisson_2indep

from trivsel.stats import scope_state
from trivsel.stats import settings as rules

TABLE = "reporting.incident_rate_change"
DEFAULT_BASELINE = rules.DEFAULT_BASELINE_YEARS
DEFAULT_FOLLOWUP = rules.DEFAULT_FOLLOWUP_YEARS
DEFAULT_ALPHA = rules.DEFAULT_ALPHA
DEFAULT_SMALL = rules.DEFAULT_SMALL_CELL_THRESHOLD
DOMAIN = "incidents"
#: bump when the results change for the same input (trivsel.stats.scope_state): every scope is recomputed
VERSION = "incidents-1"


@dataclass(frozen=True)
class YearCount:
    municipality_code: str
    register: str
    year: int
    status: str  # reported | partly_quarantined | quarantined | waiting | not_delivered
    n_counted: int | None
    fte: float | None


@dataclass(frozen=True)
class Break:
    municipality_code: str
    register: str
    break_id: str
    break_year: int
    description: str


@dataclass
class RateChange:
    municipality_code: str
    register: str
    baseline_years: str
    followup_years: str
    n_baseline_years: int
    n_followup_years: int
    status: str  # tested | no_episodes | not_delivered | quarantined | partly_quarantined | waiting
    count_baseline: int | None
    count_followup: int | None
    exposure_unit: str | None  # fte_years | years
    exposure_baseline: float | None
    exposure_followup: float | None
    rate_unit: str | None
    rate_baseline: float | None
    rate_followup: float | None
    rate_ratio: float | None
    rate_ratio_ci_low: float | None
    rate_ratio_ci_high: float | None
    p_value: float | None
    significant: bool | None
    low_count: bool | None
    crosses_break: bool
    break_id: str | None
    break_description: str | None
    note: str | None
    significance_level: float = DEFAULT_ALPHA


COLUMN_TYPES = {
    "municipality_code": "text not null", "register": "text not null",
    "baseline_years": "text not null", "followup_years": "text not null",
    "n_baseline_years": "integer not null", "n_followup_years": "integer not null", "status": "text not null",
    "count_baseline": "integer", "count_followup": "integer", "exposure_unit": "text",
    "exposure_baseline": "double precision", "exposure_followup": "double precision", "rate_unit": "text",
    "rate_baseline": "double precision", "rate_followup": "double precision",
    "rate_ratio": "double precision", "rate_ratio_ci_low": "double precision",
    "rate_ratio_ci_high": "double precision", "p_value": "double precision", "significant": "boolean",
    "low_count": "boolean", "crosses_break": "boolean not null", "break_id": "text",
    "break_description": "text", "note": "text", "significance_level": "double precision not null",
}


@dataclass(frozen=True)
class PoissonTest:
    p_value: float
    ci_low: float | None  # rate ratio follow-up / baseline
    ci_high: float | None


def poisson_rate_test(x_baseline: int, t_baseline: float, x_followup: int, t_followup: float,
                      confidence: float = 0.95) -> PoissonTest:
    """Exact conditional test of equal Poisson rates, two-sided (statsmodels test_poisson_2indep,
    'exact-cond'); the MOVER interval of the rate ratio follow-up / baseline (confint_poisson_2indep)."""
    if x_baseline + x_followup == 0:
        raise ValueError("no events: the exact rate test needs at least one")
    with np.errstate(divide="ignore", invalid="ignore"):  # a zero count: its ratio is 0 or unbounded
        res = test_poisson_2indep(x_followup, t_followup, x_baseline, t_baseline, method="exact-cond",
                                  compare="ratio", alternative="two-sided")
        low, high = confint_poisson_2indep(x_followup, t_followup, x_baseline, t_baseline, method="mover",
                                           compare="ratio", alpha=1 - confidence)

    def bound(v: float) -> float | None:
        v = float(v)
        return None if math.isnan(v) or math.isinf(v) else v  # none: unbounded (no baseline episodes)

    return PoissonTest(float(min(res.pvalue, 1.0)), bound(low), bound(high))


def _years(ys: list[int]) -> str:
    ys = sorted(ys)
    if not ys:
        return ""
    if ys == list(range(ys[0], ys[-1] + 1)) and len(ys) > 1:
        return f"{ys[0]}-{ys[-1]}"
    return ",".join(map(str, ys))


#: The status of an unusable year, most telling first: a comparison missing years for several reasons takes
#: the first that applies (a quarantined year is something to correct; not delivered is only absent).
UNUSABLE_ORDER = ("quarantined", "partly_quarantined", "waiting", "not_delivered")
_WORDS = {"not_delivered": "not delivered", "partly_quarantined": "partly quarantined"}


def _unusable(years: dict[int, YearCount], wanted: tuple[int, ...]) -> list[tuple[int, str]]:
    """The wanted years that cannot be used, each with its status (a year without a row: not delivered)."""
    out = []
    for y in wanted:
        status = years[y].status if y in years else "not_delivered"
        if status != "reported":
            out.append((y, status))
    return out


def _described(unusable: list[tuple[int, str]]) -> str:
    return ", ".join(f"{y} {_WORDS.get(s, s)}" for y, s in unusable)


def rate_changes(counts: list[YearCount], breaks: list[Break], baseline: tuple[int, ...] = DEFAULT_BASELINE,
                 followup: tuple[int, ...] = DEFAULT_FOLLOWUP, alpha: float = DEFAULT_ALPHA,
                 small: int = DEFAULT_SMALL) -> list[RateChange]:
    by_key: dict[tuple[str, str], dict[int, YearCount]] = defaultdict(dict)
    for c in counts:
        by_key[(c.municipality_code, c.register)][c.year] = c
    out: list[RateChange] = []
    for (code, register), years in sorted(by_key.items()):
        b_rows = [years[y] for y in baseline if y in years and years[y].status == "reported"]
        f_rows = [years[y] for y in followup if y in years and years[y].status == "reported"]
        used = [r.year for r in b_rows + f_rows] if b_rows and f_rows else list(baseline + followup)
        lo, hi = min(used), max(used)
        crossing = sorted((b for b in breaks if b.municipality_code == code and b.register == register
                           and lo < b.break_year <= hi), key=lambda b: b.break_id)
        row = RateChange(
            municipality_code=code, register=register, baseline_years=_years(list(baseline)),
            followup_years=_years(list(followup)), n_baseline_years=len(b_rows), n_followup_years=len(f_rows),
            status="tested", count_baseline=None, count_followup=None, exposure_unit=None,
            exposure_baseline=None, exposure_followup=None, rate_unit=None, rate_baseline=None,
            rate_followup=None, rate_ratio=None, rate_ratio_ci_low=None, rate_ratio_ci_high=None,
            p_value=None, significant=None, low_count=None, crosses_break=bool(crossing),
            break_id=", ".join(b.break_id for b in crossing) or None,
            break_description="; ".join(f"{b.break_id} ({b.break_year}): {b.description}" for b in crossing)
            or None, note=None, significance_level=alpha)
        notes = []
        b_unusable, f_unusable = _unusable(years, baseline), _unusable(years, followup)
        if not b_rows or not f_rows:
            missing = "baseline" if not b_rows else "follow-up"
            if not b_rows and not f_rows:
                missing = "baseline and follow-up"
            lacking = (b_unusable if not b_rows else []) + (f_unusable if not f_rows else [])
            statuses = {s for _y, s in lacking}
            row.status = next(s for s in UNUSABLE_ORDER if s in statuses)
            if statuses == {"not_delivered"}:
                row.note = f"not delivered in the {missing} years: no comparison (not delivered is not zero)"
            else:
                row.note = (f"no usable {missing} year ({_described(lacking)}): no comparison (a quarantined "
                            "or not delivered year is not zero)")
            out.append(row)
            continue
        if len(b_rows) < len(baseline):
            note = f"baseline uses the delivered years only: {_years([r.year for r in b_rows])}"
            if any(s != "not_delivered" for _y, s in b_unusable):
                note += f" ({_described(b_unusable)})"
            notes.append(note)
        if len(f_rows) < len(followup):
            notes.append(f"follow-up uses the delivered years only: {_years([r.year for r in f_rows])}"
                         f" ({_described(f_unusable)})")
        x0 = sum(r.n_counted or 0 for r in b_rows)
        x1 = sum(r.n_counted or 0 for r in f_rows)
        use_fte = all(r.fte is not None and r.fte > 0 for r in b_rows + f_rows)
        if use_fte:
            t0 = sum(r.fte for r in b_rows) / 100.0
            t1 = sum(r.fte for r in f_rows) / 100.0
            row.exposure_unit, row.rate_unit = "fte_years", "episodes per 100 FTE-years"
            row.exposure_baseline, row.exposure_followup = t0 * 100.0, t1 * 100.0
        else:
            t0, t1 = float(len(b_rows)), float(len(f_rows))
            row.exposure_unit, row.rate_unit = "years", "episodes per year"
            row.exposure_baseline, row.exposure_followup = t0, t1
            notes.append("FTE not known for every year compared: rate per year")
        row.count_baseline, row.count_followup = x0, x1
        row.rate_baseline, row.rate_followup = x0 / t0, x1 / t1
        row.rate_ratio = (x1 / t1) / (x0 / t0) if x0 > 0 else None
        row.low_count = min(x0, x1) < small
        if row.low_count:
            notes.append(f"low count (fewer than {small} episodes in a period): the test has little power "
                         "and the report warns that registration practice may be missing")
        if x0 + x1 == 0:
            row.status = "no_episodes"
            notes.append("no counted episodes in any year compared: nothing to test")
        else:
            test = poisson_rate_test(x0, t0, x1, t1, confidence=1 - alpha)
            row.p_value = test.p_value
            row.rate_ratio_ci_low, row.rate_ratio_ci_high = test.ci_low, test.ci_high
            row.significant = test.p_value <= alpha
        if crossing:
            notes.append(f"the comparison crosses {row.break_id}: a change may be the break, not the "
                         "intervention")
        row.note = "; ".join(notes) or None
        out.append(row)
    return out


COUNTS_SQL = """
    select municipality_code, register, year, status, n_counted, fte
    from marts.incident_rate_year
    order by municipality_code, register, year
"""
BREAKS_SQL = """
    select municipality_code, register, break_id, break_year, description_en
    from marts.incident_comparability_breaks
"""
#: what a municipality's rate changes read (the fingerprint of its scope, trivsel.stats.scope_state)
INPUT_PARTS = (
    scope_state.Part("marts.incident_rate_year", ("register", "year", "status", "n_counted", "fte")),
    scope_state.Part("marts.incident_comparability_breaks", ("register", "break_id", "break_year",
                                                             "description_en")),
)


def _settings() -> tuple[tuple[int, ...], tuple[int, ...], float, int]:
    """settings.baseline_years, followup_years, significance_level and small_cell_threshold."""
    r = rules.load()
    return r.baseline_years, r.followup_years, r.significance_level, r.small_cell_threshold


def _rows(conn, query: str) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(query)
        return [tuple(r.values()) if isinstance(r, dict) else tuple(r) for r in cur.fetchall()]


def run(conn, full: bool = False, run_id: str | None = None) -> int:
    """Read marts.incident_rate_year and the breaks; recompute the municipalities whose input changed (all
    when `full`) into reporting.incident_rate_change, in one transaction (trivsel.stats.scope_state)."""
    baseline, followup, alpha, small = _settings()
    settings = {"baseline_years": baseline, "followup_years": followup, "significance_level": alpha,
                "small_cell_threshold": small}
    prints = scope_state.fingerprints(conn, DOMAIN, VERSION, settings, INPUT_PARTS, scopes_from=(0,), rescan=full)
    p = scope_state.plan(conn, DOMAIN, prints, [(TABLE, RateChange)], full)
    results: list[RateChange] = []
    if p.full or p.recompute:
        counts = [YearCount(c, r, int(y), s, None if n is None else int(n), None if f is None else float(f))
                  for c, r, y, s, n, f in _rows(conn, COUNTS_SQL) if p.needs(c)]
        breaks = [Break(c, r, b, int(y), d) for c, r, b, y, d in _rows(conn, BREAKS_SQL) if p.needs(c)]
        results = rate_changes(counts, breaks, baseline, followup, alpha, small)
    (n,) = scope_state.write(conn, p, [scope_state.Output(
        TABLE, RateChange, results, COLUMN_TYPES,
        ("municipality_code", "register", "baseline_years", "followup_years"))], run_id)
    return n
