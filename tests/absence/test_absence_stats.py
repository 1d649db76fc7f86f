"""Sick-leave statistics: halves of the months, per-employee means, the survey's tests. The last test
runs the SQL (streaming) path in a throwaway database and compares it with the in-Python reference."""

from __future__ import annotations

import dataclasses
import math
import random
from decimal import Decimal

import psycopg
import pytest
import throwaway_db
from scipy import stats as st

from trivsel.stats import absence
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


def _synthetic_rows() -> list[tuple[str, str, str, str, Decimal]]:
    """(municipality_code, unit_name, month, employee_pseudonym, sick_days), shaped as the mart's rows."""
    rng = random.Random(20240611)

    def days() -> Decimal:
        # as the mart: numeric sick hours / 7.4, many of them 0
        return Decimal(rng.choice([0, 0, 0, rng.randint(1, 160)])) / Decimal("7.4")

    rows = []
    layouts = {
        # code: (months, units) - odd and even month counts; one municipality with a single month (no test)
        "101": ([f"2014-{m:02d}" for m in range(1, 6)], ["Ældrecenter Øst", "ab fløj", "B-fløj"]),
        "202": ([f"2015-{m:02d}" for m in range(3, 7)], ["Nat", "Dag"]),
        "303": (["2016-01"], ["Eneste"]),
        "404": (["2013-12", "2014-01"], ["Køkken", "Kontor"]),
    }
    for code, (months, units) in layouts.items():
        middle = months[len(months) // 2] if len(months) % 2 else None
        for i in range(60):
            employee = f"{'E' if i % 3 else 'e'}{i:03d}{code}"
            home = units[i % len(units)]
            for j, month in enumerate(months):
                if i % 7 == 0 and j >= len(months) // 2:
                    continue  # only in the first half (and perhaps the middle month)
                if i % 11 == 0 and j < len(months) // 2:
                    continue  # only in the second half
                if i % 5 == 0 and rng.random() < 0.3:
                    continue  # gaps
                unit = home
                if i % 4 == 0 and j >= len(months) // 2:
                    unit = units[(i + 1) % len(units)]  # moved unit half-way
                rows.append((code, unit, month, employee, days()))
                if i % 9 == 0 and len(units) > 1:
                    # in two units the same month: the all-units scope sums them
                    rows.append((code, units[(i + 2) % len(units)] if units[(i + 2) % len(units)] != unit
                                 else units[(i + 1) % len(units)], month, employee, days()))
        if middle:
            rows.append((code, "Kun midten", middle, f"m001{code}", days()))  # only in the left-out month
        first = months[0]
        rows.append((code, "Kun start", first, f"s001{code}", days()))  # a unit only in the first half
        rows.append((code, "Kun start", first, f"s002{code}", days()))
    return rows


@pytest.fixture(scope="module")
def stats_db(warehouse_url):
    """A database of its own in the session's server, with a person.fct_absence_employee_month of
    synthetic rows."""
    url = throwaway_db.create(warehouse_url, "absence_stats", rails=False)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("create schema person")
        conn.execute("""create table person.fct_absence_employee_month (
            municipality_code text not null, unit_name text not null, month_start date not null,
            month text not null, employee_pseudonym text not null, sick_hours numeric not null,
            sick_days numeric not null, primary key (municipality_code, unit_name, month_start,
            employee_pseudonym))""")
        with conn.cursor().copy("copy person.fct_absence_employee_month (municipality_code, unit_name, "
                                "month_start, month, employee_pseudonym, sick_hours, sick_days) "
                                "from stdin") as copy:
            for code, unit, month, employee, days in _synthetic_rows():
                copy.write_row((code, unit, f"{month}-01", month, employee, days * Decimal("7.4"), days))
    yield url
    throwaway_db.drop(warehouse_url, "absence_stats")


def _assert_same(got: list[absence.EmployeeTest], want: list[absence.EmployeeTest]) -> None:
    assert [(t.municipality_code, t.scope) for t in got] == [(t.municipality_code, t.scope) for t in want]
    for g, w in zip(got, want, strict=True):
        for field in dataclasses.fields(absence.EmployeeTest):
            x, y = getattr(g, field.name), getattr(w, field.name)
            if isinstance(y, float) and isinstance(x, float):
                assert math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12), (g.municipality_code, g.scope,
                                                                        field.name, x, y)
            else:
                assert x == y, (g.municipality_code, g.scope, field.name, x, y)


def test_sql_path_matches_reference(stats_db):
    with psycopg.connect(stats_db) as conn:  # not autocommit: as the pipeline's connection
        rows = conn.execute("select municipality_code, unit_name, month, employee_pseudonym, sick_days "
                            "from person.fct_absence_employee_month").fetchall()
        want = employee_tests(rows)
        assert absence.run(conn) == len(want)
        conn.commit()
        stored = conn.execute(f"select * from {absence.TABLE}").fetchall()
        # the same relation under another name, as run(conn, source) reads it
        conn.execute("create table public.absence_copy as select * from person.fct_absence_employee_month")
        other = absence.sql_employee_tests(conn, "public.absence_copy")
        conn.rollback()
    got = sorted((absence.EmployeeTest(*r) for r in stored), key=lambda t: (t.municipality_code, t.scope))
    _assert_same(got, want)
    _assert_same(other, want)

    by_key = {(t.municipality_code, t.scope): t for t in want}
    assert {c for c, _ in by_key} == {"101", "202", "404"}  # a single month: no halves, no test
    assert ("101", "Kun midten") not in by_key  # only in the left-out middle month
    assert by_key[("101", ALL_UNITS)].baseline_period == "2014-01..2014-02"
    assert by_key[("101", ALL_UNITS)].followup_period == "2014-04..2014-05"
    assert by_key[("202", ALL_UNITS)].followup_period == "2015-05..2015-06"
    assert (by_key[("404", "Køkken")].baseline_period, by_key[("404", "Køkken")].followup_period) == (
        "2013-12", "2014-01")
    start = by_key[("101", "Kun start")]
    assert (start.n_baseline, start.n_followup, start.p_value) == (2, 0, None)


def test_sql_path_reruns_identically(stats_db):
    with psycopg.connect(stats_db, autocommit=True) as conn:
        first = absence.sql_employee_tests(conn)
        absence.run(conn)
        stored = conn.execute(f"select * from {absence.TABLE}").fetchall()
        absence.run(conn)
        again = conn.execute(f"select * from {absence.TABLE}").fetchall()
        second = absence.sql_employee_tests(conn)
    assert first == second  # bit for bit
    assert stored == again


def test_only_changed_municipalities_rerun(stats_db):
    """trivsel.stats.scope_state: after one municipality's rows change, only it is recomputed (the others keep
    their computed_at and run_id), and the table equals a full recompute. Rolled back: the module's rows stay."""
    from trivsel.stats.scope_state import STATE_TABLE

    def state(conn) -> dict[str, tuple]:
        return {r[0]: r[1:] for r in conn.execute(f"select scope, fingerprint, computed_at, run_id from {STATE_TABLE}"
                                                  " where domain = 'absence'")}

    def table(conn) -> list[tuple]:
        return conn.execute(f"select * from {absence.TABLE} order by 1, 2, 3, 4, 5").fetchall()

    with psycopg.connect(stats_db) as conn:
        absence.run(conn, run_id="first")
        before, first = state(conn), table(conn)
        assert {"101", "202", "404"} <= set(before)
        assert absence.run(conn, run_id="idle") == 0 and state(conn) == before
        conn.execute("update person.fct_absence_employee_month set sick_days = sick_days + 3"
                     " where municipality_code = '101' and unit_name = 'Kun start'")
        written = absence.run(conn, run_id="changed")
        after = state(conn)
        assert {s for s, v in after.items() if v[2] == "changed"} == {"101"}
        assert {s: v for s, v in after.items() if s != "101"} == {s: v for s, v in before.items() if s != "101"}
        incremental = table(conn)
        assert written == sum(1 for r in incremental if r[0] == "101")
        assert [r for r in incremental if r[0] == "101"] != [r for r in first if r[0] == "101"]
        absence.run(conn, full=True, run_id="full")
        assert table(conn) == incremental
        conn.rollback()


def test_change_ci_agrees_with_the_normal_theory_interval_for_large_samples():
    """For many employees the percentile bootstrap of a difference of means approaches the large-sample
    interval diff ± z·√(s₁²/n₁ + s₂²/n₂) (computed here by hand, not by the bootstrap)."""
    import numpy as np

    rng = np.random.default_rng(5)
    a, b = rng.gamma(2.0, 1.5, 600), rng.gamma(2.0, 1.2, 500)  # skewed, as sick days are
    low, high = absence.change_ci(a, b, 0.95, "607|(all units)")
    diff = b.mean() - a.mean()
    half = st.norm.ppf(0.975) * math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    assert low < diff < high
    assert (high - low) == pytest.approx(2 * half, rel=0.08)
    assert (low, high) == pytest.approx((diff - half, diff + half), abs=0.08 * half)
    # a narrower confidence gives a narrower interval; too few employees give none
    low90, high90 = absence.change_ci(a, b, 0.90, "607|(all units)")
    assert low < low90 < high90 < high
    assert all(math.isnan(v) for v in absence.change_ci([1.0], [2.0, 3.0], 0.95, "k"))


def test_change_ci_is_reproducible():
    """A fixed seed per (municipality, scope): a re-run writes the same interval, bit for bit."""
    a, b = [0.0, 1.0, 2.0, 0.0, 5.0, 0.5, 3.0], [0.0, 0.0, 1.0, 0.0, 1.0, 2.0]
    assert absence.change_ci(a, b, 0.95, "169|A") == absence.change_ci(a, b, 0.95, "169|A")
    assert absence.change_ci([2.0] * 4, [3.0] * 5, 0.95, "169|A") == (1.0, 1.0)


def test_significance_level_reaches_the_employee_tests():
    rows = [("169", "A", m, f"e{i}", float(d)) for i, (m, d) in enumerate(
        [("2014-01", v) for v in (0, 1, 2, 0, 5, 1, 2, 3)] + [("2014-02", v) for v in (3, 4, 6, 2, 5, 7, 4, 6)])]
    strict = {t.scope: t for t in employee_tests(rows, alpha=0.0001)}
    loose = {t.scope: t for t in employee_tests(rows, alpha=0.05)}
    t_strict, t_loose = strict["A"], loose["A"]
    assert 0.0001 < t_loose.p_value <= 0.05
    assert t_loose.significant and not t_strict.significant
    assert (t_loose.significance_level, t_strict.significance_level) == (0.05, 0.0001)
    # the change's interval is 1 − the level
    assert t_strict.change_ci_low < t_loose.change_ci_low < t_loose.mean_diff < t_loose.change_ci_high
    assert t_loose.change_ci_high < t_strict.change_ci_high
