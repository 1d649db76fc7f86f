"""Sick-leave statistics where employee-level data exist (payroll extracts): did sick days per employee
change between the first and the last half of the months available? Writes reporting.absence_employee_test.

Per municipality and scope (each unit, and '(all units)'), the months with payroll data are ordered and
split in halves (the middle month of an odd count is left out). Each employee's value in a half is their
mean sick days per month over the months they appear in; Welch's t-test and Mann–Whitney U compare the two
halves (independent-samples view, as the survey tests), with Hedges' g. Columns as the survey tests
(reporting.survey_item_change) where they apply. The math is trivsel.stats.survey's.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from trivsel.stats import reporting_table
from trivsel.stats.survey import SIGNIFICANCE_LEVEL, hedges_g, mannwhitney_p, welch_test

TABLE = "reporting.absence_employee_test"
ALL_UNITS = "(all units)"
METRIC = "sick_days_per_employee_month"


@dataclass
class EmployeeTest:
    municipality_code: str
    scope: str
    metric: str
    baseline_period: str
    followup_period: str
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
    effect_size: float | None
    effect_ci_low: float | None
    effect_ci_high: float | None


COLUMN_TYPES = {
    "municipality_code": "text not null", "scope": "text not null", "metric": "text not null",
    "baseline_period": "text not null", "followup_period": "text not null",
    "n_baseline": "integer not null", "n_followup": "integer not null",
    "mean_baseline": "double precision", "mean_followup": "double precision", "mean_diff": "double precision",
    "t_statistic": "double precision", "welch_df": "double precision", "p_value": "double precision",
    "significant": "boolean", "mannwhitney_p": "double precision", "effect_size": "double precision",
    "effect_ci_low": "double precision", "effect_ci_high": "double precision",
}


def _num(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def split_halves(months: list[str]) -> tuple[list[str], list[str]]:
    """First and last half of the ordered months; the middle one of an odd count is left out."""
    ordered = sorted(set(months))
    half = len(ordered) // 2
    return ordered[:half], ordered[len(ordered) - half:] if half else []


def _label(months: list[str]) -> str:
    return months[0] if len(months) == 1 else f"{months[0]}..{months[-1]}"


def employee_tests(rows: list[tuple[str, str, str, str, float]],
                   alpha: float = SIGNIFICANCE_LEVEL) -> list[EmployeeTest]:
    """rows: (municipality_code, unit_name, month 'YYYY-MM', employee_pseudonym, sick_days)."""
    months_by_muni: dict[str, set[str]] = defaultdict(set)
    # (municipality, scope, employee) -> month -> sick days (summed over units for the all-units scope)
    values: dict[tuple[str, str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for code, unit, month, employee, days in rows:
        months_by_muni[code].add(month)
        values[(code, unit, employee)][month] += float(days)
        values[(code, ALL_UNITS, employee)][month] += float(days)
    out: list[EmployeeTest] = []
    for code in sorted(months_by_muni):
        base, follow = split_halves(sorted(months_by_muni[code]))
        if not base:
            continue
        scopes = sorted({s for (c, s, _) in values if c == code})
        for scope in scopes:
            a: list[float] = []
            b: list[float] = []
            for (c, s, _employee), by_month in sorted(values.items()):
                if c != code or s != scope:
                    continue
                in_a = [by_month[m] for m in base if m in by_month]
                in_b = [by_month[m] for m in follow if m in by_month]
                if in_a:
                    a.append(float(np.mean(in_a)))
                if in_b:
                    b.append(float(np.mean(in_b)))
            if not a and not b:
                continue
            w = welch_test(a, b)
            e = hedges_g(a, b)
            mean_a = float(np.mean(a)) if a else math.nan
            mean_b = float(np.mean(b)) if b else math.nan
            out.append(EmployeeTest(
                municipality_code=code, scope=scope, metric=METRIC,
                baseline_period=_label(base), followup_period=_label(follow),
                n_baseline=len(a), n_followup=len(b),
                mean_baseline=_num(mean_a), mean_followup=_num(mean_b), mean_diff=_num(mean_b - mean_a),
                t_statistic=_num(w.t), welch_df=_num(w.df), p_value=_num(w.p),
                significant=None if math.isnan(w.p) else bool(w.p <= alpha),
                mannwhitney_p=_num(mannwhitney_p(a, b)),
                effect_size=_num(e.g), effect_ci_low=_num(e.ci_low), effect_ci_high=_num(e.ci_high),
            ))
    return out


ROWS_SQL = """
    select municipality_code, unit_name, month, employee_pseudonym, sick_days
    from marts.fct_absence_employee_month
    -- a fixed order: float sums come out bit-identical on every re-run
    order by municipality_code, unit_name, month, employee_pseudonym
"""


def run(conn) -> int:
    """Read marts.fct_absence_employee_month, replace reporting.absence_employee_test in one transaction."""
    with conn.cursor() as cur:
        cur.execute(ROWS_SQL)
        rows = [tuple(r.values()) if isinstance(r, dict) else tuple(r) for r in cur.fetchall()]
    tests = employee_tests(rows)
    return reporting_table.replace(conn, TABLE, EmployeeTest, tests, COLUMN_TYPES,
                                   ("municipality_code", "scope", "metric", "baseline_period", "followup_period"))
