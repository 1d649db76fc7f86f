"""Sick-leave statistics where employee-level data exist (payroll extracts): did sick days per employee
change between the first and the last half of the months available? Writes reporting.absence_employee_test.

Per municipality and scope (each unit, and '(all units)'), the months with payroll data are ordered and
split in halves (the middle month of an odd count is left out). Each employee's value in a half is their
mean sick days per month over the months they appear in; Welch's t-test and Mann–Whitney U compare the two
halves (independent-samples view, as the survey tests), with Hedges' g, significant at p ≤
settings.significance_level. Columns as the survey tests (reporting.survey_item_change) where they apply.
The math is trivsel.stats.survey's.

The change (mean_diff = follow-up − baseline mean) has a (1 − significance_level) confidence interval,
change_ci_low / change_ci_high: a percentile bootstrap over employees (scipy.stats.bootstrap; each half's
employees resampled independently, as the test treats them), 2 000 resamples, with a seed fixed per
(municipality, scope) so that a re-run writes the same warehouse. The percentile method, not BCa: BCa's
jackknife costs n² for a national municipality's thousands of employees.

The same for the report's change (reporting.absence_change: follow-up year − mean of the baseline years, per
unit and metric) where every figure it is computed from comes from the payroll (employee-level data):
reporting.absence_change_ci, a percentile bootstrap over the unit's employees (each employee with all their
years, so a year's figure and the baseline's stay paired), the metrics recomputed from the resampled sums as
docs/sources/hr_payroll_csv.md defines them. The change recomputed from all employees must equal the dbt
model's (to its 4 decimals); otherwise no interval is written and a warning says why. A change from a
delivered yearly figure (hr_unit_year_summary, a workbook) has no employees to resample: no interval.

Memory is bounded: the per-employee means are computed in SQL (VALUES_SQL) and streamed through a
server-side cursor in a fixed order, so only one (municipality, scope)'s two float arrays are in Python at a
time. employee_tests() is the in-Python reference implementation (the tests compare the two). In the
pipeline (a source incremental by delivery) the per-employee means come from per-half sums kept in the
warehouse (trivsel.stats.absence_halves, kept_employee_tests): a month reads the months that changed half,
not all of history, and gives the same rows as VALUES_SQL, bit for bit.

Per municipality (the scope, trivsel.stats.scope_state), both tables are recomputed only when what they read
of it changed: its payroll rows, its reporting.absence_change rows or its payroll unit-years, or the level.
The change intervals read a municipality's employee-year sums in two queries, not two per unit change.
"""

from __future__ import annotations

import logging
import math
import zlib
from array import array
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from psycopg import sql
from psycopg.rows import tuple_row
from scipy import stats as st

from trivsel.stats import absence_halves, part_hash, scope_state
from trivsel.stats import settings as rules
from trivsel.stats.survey import SIGNIFICANCE_LEVEL, hedges_g, mannwhitney_p, welch_test

log = logging.getLogger(__name__)

TABLE = "reporting.absence_employee_test"
ALL_UNITS = "(all units)"
METRIC = "sick_days_per_employee_month"
SOURCE = "person.fct_absence_employee_month"
BOOTSTRAP_RESAMPLES = 2_000
BOOTSTRAP_SEED = 20_130_101
DOMAIN = "absence"
#: bump when the results change for the same input (trivsel.stats.scope_state): every scope is recomputed
VERSION = "absence-1"


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
    change_ci_low: float | None = None
    change_ci_high: float | None = None
    significance_level: float = SIGNIFICANCE_LEVEL


COLUMN_TYPES = {
    "municipality_code": "text not null", "scope": "text not null", "metric": "text not null",
    "baseline_period": "text not null", "followup_period": "text not null",
    "n_baseline": "integer not null", "n_followup": "integer not null",
    "mean_baseline": "double precision", "mean_followup": "double precision", "mean_diff": "double precision",
    "t_statistic": "double precision", "welch_df": "double precision", "p_value": "double precision",
    "significant": "boolean", "mannwhitney_p": "double precision", "effect_size": "double precision",
    "effect_ci_low": "double precision", "effect_ci_high": "double precision",
    "change_ci_low": "double precision", "change_ci_high": "double precision",
    "significance_level": "double precision not null",
}


def _mean_diff(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    # ndarray.mean is what np.mean calls for an ndarray (the same sums, the same bits) without its dispatch:
    # the bootstrap calls this 20 times per scope
    return b.mean(axis=axis) - a.mean(axis=axis)


def change_ci(a: Sequence[float], b: Sequence[float], confidence: float, key: str) -> tuple[float, float]:
    """Percentile-bootstrap interval of mean(b) − mean(a), resampling the employees of each half
    independently; `key` (municipality and scope) seeds the generator, so the same data give the same
    interval on every run. NaN with fewer than 2 employees in a half (nothing to resample)."""
    x, y = np.asarray(a, float), np.asarray(b, float)
    if len(x) < 2 or len(y) < 2:
        return math.nan, math.nan
    if np.ptp(x) == 0 and np.ptp(y) == 0:
        d = float(y[0] - x[0])  # no spread: every resample gives the same difference
        return d, d
    rng = np.random.default_rng([BOOTSTRAP_SEED, zlib.crc32(key.encode())])
    res = st.bootstrap((x, y), lambda u, v, axis=-1: _mean_diff(u, v, axis), n_resamples=BOOTSTRAP_RESAMPLES,
                       confidence_level=confidence, method="percentile", vectorized=True, paired=False,
                       batch=100, random_state=rng)
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


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
            out.append(_scope_test(code, scope, _label(base), _label(follow), a, b, alpha))
    return out


def _scope_test(code: str, scope: str, baseline_period: str, followup_period: str,
                a: Sequence[float], b: Sequence[float], alpha: float) -> EmployeeTest:
    """The tests on one (municipality, scope): a, b are the employees' mean sick days in each half."""
    w = welch_test(a, b)
    e = hedges_g(a, b)
    ci_low, ci_high = change_ci(a, b, 1 - alpha, f"{code}|{scope}")
    mean_a = float(np.mean(a)) if len(a) else math.nan
    mean_b = float(np.mean(b)) if len(b) else math.nan
    return EmployeeTest(
        municipality_code=code, scope=scope, metric=METRIC,
        baseline_period=baseline_period, followup_period=followup_period,
        n_baseline=len(a), n_followup=len(b),
        mean_baseline=_num(mean_a), mean_followup=_num(mean_b), mean_diff=_num(mean_b - mean_a),
        t_statistic=_num(w.t), welch_df=_num(w.df), p_value=_num(w.p),
        significant=None if math.isnan(w.p) else bool(w.p <= alpha),
        mannwhitney_p=_num(mannwhitney_p(a, b)),
        effect_size=_num(e.g), effect_ci_low=_num(e.ci_low), effect_ci_high=_num(e.ci_high),
        change_ci_low=_num(ci_low), change_ci_high=_num(ci_high), significance_level=alpha,
    )


# One row per (municipality, scope, employee) that appears in either half: the employee's mean sick days over
# the months of each half they appear in (NULL where they do not). The same halves as split_halves(): per
# municipality the distinct months in order, the middle one of an odd count in neither half. A mean over the
# months an employee appears in of their sick days that month (summed over units for the all-units scope,
# per unit for a unit scope) is their total sick days in the half / the number of distinct months they
# appear in it, so one grouping (sets: with unit_name for the unit scopes, without for all units) does both.
# Sums and quotients are taken in numeric (exact, so independent of the order rows are summed in) and cast
# to double precision once; every sort uses the "C" collation (code-point order, as Python's sorted()), so
# the rows come in one fixed order and re-runs are byte-identical.
VALUES_SQL = """
    with months as (
        select municipality_code, month,
               row_number() over (partition by municipality_code order by month) as rn,
               count(*) over (partition by municipality_code) as n_months
        from (select distinct municipality_code::text collate "C" as municipality_code,
                              month::text collate "C" as month
              from {source}) as distinct_months
    ),
    halves as (
        select municipality_code, month,
               case when rn <= n_months / 2 then 1 else 2 end as half
        from months
        where n_months >= 2 and (rn <= n_months / 2 or rn > n_months - n_months / 2)
    ),
    labels as (
        select municipality_code,
               min(month) filter (where half = 1) as first_a,
               max(month) filter (where half = 1) as last_a,
               min(month) filter (where half = 2) as first_b,
               max(month) filter (where half = 2) as last_b
        from halves
        group by municipality_code
    ),
    in_halves as (
        select h.municipality_code, s.unit_name::text collate "C" as unit_name,
               s.employee_pseudonym::text collate "C" as employee_pseudonym, h.month, h.half,
               s.sick_days::numeric as sick_days
        from {source} as s
        join halves as h on h.municipality_code = s.municipality_code::text collate "C"
                        and h.month = s.month::text collate "C"
    ),
    employee as (
        select municipality_code,
               case when grouping(unit_name) = 1 then %(all_units)s collate "C" else unit_name end as scope,
               employee_pseudonym,
               (sum(sick_days) filter (where half = 1)
                / count(distinct month) filter (where half = 1))::double precision as value_a,
               (sum(sick_days) filter (where half = 2)
                / count(distinct month) filter (where half = 2))::double precision as value_b
        from in_halves
        group by grouping sets ((municipality_code, employee_pseudonym, unit_name),
                                (municipality_code, employee_pseudonym))
    )
    select e.municipality_code, e.scope,
           case when l.first_a = l.last_a then l.first_a else l.first_a || '..' || l.last_a end as baseline_period,
           case when l.first_b = l.last_b then l.first_b else l.first_b || '..' || l.last_b end as followup_period,
           e.value_a, e.value_b
    from employee as e
    join labels as l on l.municipality_code = e.municipality_code
    order by e.municipality_code collate "C", e.scope collate "C", e.employee_pseudonym collate "C"
"""

FETCH_ROWS = 20_000


def _scoped(source: str) -> sql.Composed:
    """`source` limited to the municipalities asked for (%(all)s, or municipality_code in %(codes)s)."""
    return sql.SQL("(select * from {} where %(all)s or municipality_code::text = any(%(codes)s))").format(
        sql.Identifier(*source.split(".")))


def _values_query(source: str) -> sql.Composed:
    return sql.SQL(VALUES_SQL).format(source=_scoped(source))


def _stream_tests(rows: Iterable[tuple], alpha: float) -> Iterator[EmployeeTest]:
    """rows: (municipality_code, scope, baseline_period, followup_period, value_a, value_b) ordered by
    municipality and scope; yields one test per (municipality, scope), holding only that scope's values."""
    key = None
    a, b = array("d"), array("d")
    labels = ("", "")
    for code, scope, baseline_period, followup_period, value_a, value_b in rows:
        if (code, scope) != key:
            if key is not None:
                yield _scope_test(*key, *labels, np.frombuffer(a), np.frombuffer(b), alpha)
            key, labels = (code, scope), (baseline_period, followup_period)
            a, b = array("d"), array("d")
        if value_a is not None:
            a.append(value_a)
        if value_b is not None:
            b.append(value_b)
    if key is not None:
        yield _scope_test(*key, *labels, np.frombuffer(a), np.frombuffer(b), alpha)


def sql_employee_tests(conn, source: str = SOURCE, alpha: float = SIGNIFICANCE_LEVEL,
                       codes: Sequence[str] | None = None) -> list[EmployeeTest]:
    """employee_tests() over `source` (a relation shaped as person.fct_absence_employee_month), with the
    per-employee means computed in the database and streamed through a server-side cursor; only the
    municipalities `codes` (None: all)."""
    # A server-side cursor lives in a transaction (a savepoint if one is already open).
    with conn.transaction(), conn.cursor(name="absence_employee_values", row_factory=tuple_row) as cur:
        cur.itersize = FETCH_ROWS
        cur.execute(_values_query(source), {"all_units": ALL_UNITS, "all": codes is None,
                                            "codes": list(codes or [])})
        return list(_stream_tests(cur, alpha))


def _keeps_halves(conn, part: scope_state.Part) -> bool:
    """Whether the test's per-half sums can be kept for `part`'s relation (trivsel.stats.absence_halves): it
    must be incremental by delivery, as part_hash needs it (a delivery_id with an index, no row without one)."""
    schema, name = part.relation.split(".", 1)
    with conn.cursor(row_factory=tuple_row) as cur:
        cur.execute("select column_name::text from information_schema.columns where table_schema = %s"
                    " and table_name = %s", (schema, name))
        present = {r[0] for r in cur.fetchall()}
    return not part_hash.usable(conn, part.relation, part.delivery_column or "delivery_id", part.fingerprint_column,
                                present)


def kept_employee_tests(conn, source: str, alpha: float, codes: Sequence[str], current: dict[str, str],
                        hash_columns: Sequence[str], rebuild: bool = False,
                        scopes: Sequence[str] = ()) -> list[EmployeeTest]:
    """sql_employee_tests() of the municipalities `codes` (with `rebuild`: of every municipality in
    `current`), from the per-half sums kept in the warehouse (trivsel.stats.absence_halves), which this
    first brings up to `source`: the same rows as VALUES_SQL gives, bit for bit, without reading every month.
    `current`: each municipality's input hash now (scope_state); `scopes`: every municipality of the source."""
    asked = sorted(current) if rebuild else list(codes)
    if rebuild:
        with conn.transaction(), conn.cursor() as cur:
            absence_halves.ensure(conn)
            cur.execute(f"delete from {absence_halves.MUNI_TABLE} where source = %s", (source,))
    absence_halves.refresh(conn, source, asked, current, hash_columns, ALL_UNITS, scopes or list(current))
    with conn.transaction(), conn.cursor(name="absence_half_values", row_factory=tuple_row) as cur:
        cur.itersize = FETCH_ROWS
        cur.execute(absence_halves.VALUES_FROM_STATE, {"source": source, "codes": asked})
        return list(_stream_tests(cur, alpha))


CHANGE_CI_TABLE = "reporting.absence_change_ci"
PAYROLL_SCHEME = "hr_payroll_csv"


@dataclass
class ChangeCI:
    municipality_code: str
    unit_name: str
    metric: str
    followup_year: int
    baseline_years: str
    n_employees: int
    change: float | None
    change_ci_low: float | None
    change_ci_high: float | None
    significance_level: float


CHANGE_CI_COLUMN_TYPES = {
    "municipality_code": "text not null", "unit_name": "text not null", "metric": "text not null",
    "followup_year": "integer not null", "baseline_years": "text not null", "n_employees": "integer not null",
    "change": "double precision", "change_ci_low": "double precision", "change_ci_high": "double precision",
    "significance_level": "double precision not null",
}

#: the computable unit changes whose every figure (baseline years and follow-up year) is computed from payroll
PAYROLL_CHANGES_SQL = """
    select c.municipality_code, c.unit_name, c.metric, c.followup_year, c.baseline_years,
           c.change::double precision as change
    from reporting.absence_change as c
    where c.computable and not c.is_average and c.change is not null and c.baseline_years <> 'none'
        and (%(all)s or c.municipality_code = any(%(codes)s))
        and (
            select count(*)
            from marts.absence_unit_year as y
            where y.municipality_code = c.municipality_code and y.unit_name = c.unit_name
                and y.metric = c.metric and y.source_scheme = %(scheme)s and y.value_status = 'reported'
                and (y.year = c.followup_year or y.year = any(string_to_array(c.baseline_years, ', ')::int[]))
        ) = 1 + cardinality(string_to_array(c.baseline_years, ', '))
    order by c.municipality_code collate "C", c.unit_name collate "C", c.metric collate "C", c.followup_year
"""
#: per municipality, unit, employee and year (every unit and year each municipality's changes need, all the
#: municipalities in one scan of `source`): the sums the unit-year metrics are computed from. `wanted_units`
#: and `wanted_years` are the (municipality, unit) and (municipality, year) pairs of the changes, so a
#: municipality's rows are those of its units in its years, the rows the former query per municipality (two
#: scans of all history each, with no index to limit them to the municipality) grouped: the same sums.
EMPLOYEE_YEARS_SQL = """
    with wanted_units as (
        select * from unnest(%(unit_codes)s::text[], %(units)s::text[]) as w (municipality_code, unit_name)
    ),
    wanted_years as (
        select * from unnest(%(year_codes)s::text[], %(years)s::int[]) as w (municipality_code, year)
    )
    select s.municipality_code::text collate "C" as code, s.unit_name::text collate "C" as unit,
           s.employee_pseudonym::text collate "C" as employee, extract(year from s.month_start)::int as year,
           sum(s.sick_hours)::double precision, sum(s.contractual_hours)::double precision,
           sum(s.sick_days)::double precision, sum(s.fte)::double precision
    from {source} as s
    join wanted_units as u on u.municipality_code = s.municipality_code and u.unit_name = s.unit_name
    join wanted_years as y on y.municipality_code = s.municipality_code
                          and y.year = extract(year from s.month_start)::int
    group by 1, 2, 3, 4
    order by 1, 2, 3, 4
"""
UNIT_MONTHS_SQL = """
    with wanted_units as (
        select * from unnest(%(unit_codes)s::text[], %(units)s::text[]) as w (municipality_code, unit_name)
    ),
    wanted_years as (
        select * from unnest(%(year_codes)s::text[], %(years)s::int[]) as w (municipality_code, year)
    )
    select s.municipality_code::text, s.unit_name::text, extract(year from s.month_start)::int as year,
           count(distinct s.month_start)::int
    from {source} as s
    join wanted_units as u on u.municipality_code = s.municipality_code and u.unit_name = s.unit_name
    join wanted_years as y on y.municipality_code = s.municipality_code
                          and y.year = extract(year from s.month_start)::int
    group by 1, 2, 3
"""


def unit_metric(metric: str, sick: np.ndarray, contract: np.ndarray, days: np.ndarray, fte: np.ndarray,
                months: np.ndarray) -> np.ndarray:
    """A payroll unit-year metric from its sums (docs/sources/hr_payroll_csv.md, "Metrics"; dbt's
    int_absence__payroll_unit_year): the unit's FTE in the year is its mean monthly FTE."""
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = 100 * sick / contract
        fte_year = fte / months
        if metric == "pct_whole_group":
            return pct
        if metric == "pct_per_employee":
            return pct / fte_year
        if metric == "days_per_employee":
            return days / fte_year
    raise ValueError(f"no payroll formula for metric {metric!r}")


def change_from_sums(metric: str, sums: np.ndarray, months: np.ndarray, followup: int) -> np.ndarray:
    """sums (..., 4, Y): sick hours, contractual hours, sick days, FTE per year; `followup` the follow-up's
    index, the other years the baseline. Follow-up value − mean of the baseline values."""
    values = unit_metric(metric, sums[..., 0, :], sums[..., 1, :], sums[..., 2, :], sums[..., 3, :], months)
    baseline = [i for i in range(values.shape[-1]) if i != followup]
    return values[..., followup] - values[..., baseline].mean(axis=-1)


def bootstrap_change_ci(metric: str, per_employee: np.ndarray, months: np.ndarray, followup: int,
                        confidence: float, key: str) -> tuple[float, float]:
    """per_employee (E, 4, Y): each employee's yearly sums (0 in a year they are not in). Resamples
    employees with all their years (scipy.stats.bootstrap, paired), percentile interval, seeded by `key`."""
    n, k, y = per_employee.shape
    if n < 2:
        return math.nan, math.nan
    columns = tuple(per_employee.reshape(n, k * y).T)  # k·y paired samples of length n

    def statistic(*cols, axis=-1):
        sums = np.stack([np.sum(c, axis=axis) for c in cols], axis=-1).reshape(*np.shape(cols[0])[:-1], k, y)
        return change_from_sums(metric, sums, months, followup)

    rng = np.random.default_rng([BOOTSTRAP_SEED, zlib.crc32(key.encode())])
    res = st.bootstrap(columns, statistic, paired=True, vectorized=True, n_resamples=BOOTSTRAP_RESAMPLES,
                       confidence_level=confidence, method="percentile", batch=100, random_state=rng)
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def _change_ci(code: str, unit: str, metric: str, followup_year: int, baseline_text: str, change: float,
               employee_years: dict[str, dict[int, list[float]]], months_by_year: dict[int, int],
               alpha: float) -> ChangeCI:
    """One change's interval from its unit's employee-year sums (employee -> year -> 4 sums)."""
    years = sorted({int(y) for y in baseline_text.split(", ")} | {int(followup_year)})
    wanted = set(years)
    employees = sorted(e for e, by_year in employee_years.items() if wanted & set(by_year))
    index = {e: i for i, e in enumerate(employees)}
    per_employee = np.zeros((len(employees), 4, len(years)))
    for employee in employees:
        for year, sums in employee_years[employee].items():
            if year in wanted:
                per_employee[index[employee], :, years.index(year)] = sums
    months = np.array([months_by_year.get(y, 0) for y in years], float)
    f = years.index(int(followup_year))
    point = float(change_from_sums(metric, per_employee.sum(axis=0), months, f))
    row = ChangeCI(code, unit, metric, int(followup_year), baseline_text, len(employees), _num(point),
                   None, None, alpha)
    if not math.isfinite(point) or abs(round(point, 4) - change) > 1.5e-4:
        log.warning("absence %s %s %s %s: the change from the employees (%s) is not the model's (%s):"
                    " no interval", code, unit, metric, followup_year, point, change)
    else:
        low, high = bootstrap_change_ci(metric, per_employee, months, f, 1 - alpha,
                                        f"{code}|{unit}|{metric}|{followup_year}")
        row.change_ci_low, row.change_ci_high = _num(low), _num(high)
    return row


def change_cis(conn, source: str = SOURCE, alpha: float = SIGNIFICANCE_LEVEL,
               codes: Sequence[str] | None = None) -> list[ChangeCI]:
    """The bootstrap interval of every reporting.absence_change computed from payroll figures only, of the
    municipalities `codes` (None: all). Set-based: two scans of `source` for all the municipalities (their
    units' month counts, and their employee-year sums streamed in municipality order, so only one
    municipality's sums are in memory at a time), not two per municipality: `source` has no index on the
    municipality, so each of those read every month of history again (98 × 2 scans in a national month)."""
    out: list[ChangeCI] = []
    src = sql.Identifier(*source.split("."))
    with conn.cursor(row_factory=tuple_row) as cur:
        cur.execute("select to_regclass('reporting.absence_change') is not null"
                    " and to_regclass('marts.absence_unit_year') is not null")
        if not cur.fetchone()[0]:
            log.warning("absence: reporting.absence_change is not built in this warehouse: no change intervals")
            return out
        cur.execute(PAYROLL_CHANGES_SQL, {"scheme": PAYROLL_SCHEME, "all": codes is None,
                                          "codes": list(codes or [])})
        by_code: dict[str, list[tuple]] = defaultdict(list)
        for r in cur.fetchall():
            by_code[r[0]].append(r)
        if not by_code:
            return out
        unit_pairs = sorted({(code, r[1]) for code, changes in by_code.items() for r in changes})
        year_pairs = sorted({(code, int(y)) for code, changes in by_code.items() for r in changes
                             for y in [*r[4].split(", "), r[3]]})
        params = {"unit_codes": [c for c, _ in unit_pairs], "units": [u for _, u in unit_pairs],
                  "year_codes": [c for c, _ in year_pairs], "years": [y for _, y in year_pairs]}
        cur.execute(sql.SQL(UNIT_MONTHS_SQL).format(source=src), params)
        months: dict[str, dict[str, dict[int, int]]] = defaultdict(lambda: defaultdict(dict))
        for code, unit, year, n in cur.fetchall():
            months[code][unit][int(year)] = n

    def finish(code: str, sums: dict[str, dict[str, dict[int, list[float]]]]) -> None:
        for _code, unit, metric, followup_year, baseline_text, change in by_code[code]:
            out.append(_change_ci(code, unit, metric, followup_year, baseline_text, change,
                                  sums.get(unit, {}), months[code].get(unit, {}), alpha))

    done: set[str] = set()
    # a server-side cursor lives in a transaction (a savepoint if one is already open)
    with conn.transaction(), conn.cursor(name="absence_employee_years", row_factory=tuple_row) as cur:
        cur.itersize = FETCH_ROWS
        cur.execute(sql.SQL(EMPLOYEE_YEARS_SQL).format(source=src), params)
        current: str | None = None
        sums: dict[str, dict[str, dict[int, list[float]]]] = defaultdict(lambda: defaultdict(dict))
        for code, unit, employee, year, *values in cur:
            if code != current:
                if current is not None:
                    finish(current, sums)
                    done.add(current)
                current, sums = code, defaultdict(lambda: defaultdict(dict))
            sums[unit][employee][int(year)] = [v or 0.0 for v in values]
        if current is not None:
            finish(current, sums)
            done.add(current)
    for code in by_code:  # a municipality with changes but no employee rows in their units and years
        if code not in done:
            finish(code, {})
    order = {code: i for i, code in enumerate(by_code)}
    out.sort(key=lambda c: order[c.municipality_code])  # the order of the changes, as before: stable sort
    return out


#: what a municipality's tests and intervals read (the fingerprint of its scope, trivsel.stats.scope_state)
def input_parts(source: str = SOURCE) -> tuple[scope_state.Part, ...]:
    return (
        scope_state.Part(source, ("unit_name", "month", "month_start", "employee_pseudonym", "sick_days",
                                  "sick_hours", "contractual_hours", "fte"), delivery_column="delivery_id"),
        scope_state.Part("reporting.absence_change", ("unit_name", "metric", "followup_year", "baseline_years",
                                                      "change", "computable", "is_average")),
        scope_state.Part("marts.absence_unit_year", ("unit_name", "metric", "year", "source_scheme",
                                                     "value_status"), "source_scheme = %(scheme)s",
                         params={"scheme": PAYROLL_SCHEME}),
    )


def run(conn, source: str = SOURCE, full: bool = False, run_id: str | None = None) -> int:
    """Read `source` (person.fct_absence_employee_month); recompute the municipalities whose input changed
    (all when `full`) into reporting.absence_employee_test and reporting.absence_change_ci, in one
    transaction (trivsel.stats.scope_state). Returns the employee-test rows written."""
    alpha = rules.load().significance_level
    settings = {"significance_level": alpha, "bootstrap_resamples": BOOTSTRAP_RESAMPLES,
                "bootstrap_seed": BOOTSTRAP_SEED}
    parts = input_parts(source)
    hashes: list[dict[str, str]] = []
    prints = scope_state.fingerprints(conn, DOMAIN, VERSION, settings, parts, rescan=full, hashes_out=hashes)
    p = scope_state.plan(conn, DOMAIN, prints, [(TABLE, EmployeeTest), (CHANGE_CI_TABLE, ChangeCI)], full)
    tests: list[EmployeeTest] = []
    cis: list[ChangeCI] = []
    if p.full or p.recompute:
        codes = None if p.full else p.recompute
        if _keeps_halves(conn, parts[0]):
            tests = kept_employee_tests(conn, source, alpha, list(p.recompute), hashes[0], parts[0].columns,
                                        rebuild=p.full, scopes=list(hashes[0]))
        else:
            tests = sql_employee_tests(conn, source, alpha=alpha, codes=codes)
        cis = change_cis(conn, source, alpha, codes=codes)
    n, _ = scope_state.write(conn, p, [
        scope_state.Output(TABLE, EmployeeTest, tests, COLUMN_TYPES,
                           ("municipality_code", "scope", "metric", "baseline_period", "followup_period")),
        scope_state.Output(CHANGE_CI_TABLE, ChangeCI, cis, CHANGE_CI_COLUMN_TYPES,
                           ("municipality_code", "unit_name", "metric", "followup_year"))], run_id)
    return n
