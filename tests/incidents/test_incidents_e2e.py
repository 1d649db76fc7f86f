"""The report's incident and use-of-force figures (Tables 7.1–7.5), through the real pipeline run over every
sample period (session fixture demo_warehouse)."""

from __future__ import annotations

import pytest
from scipy.stats import binom

from trivsel.config import load_config

pytestmark = pytest.mark.e2e

HT, ODENSE, FR = "169", "461", "607"
YEARS = (2010, 2011, 2012, 2013)
ALPHA = float(load_config().settings["significance_level"])


def _episodes(conn, code: str, register: str) -> dict[int, dict]:
    rows = conn.execute("select * from marts.incident_episode_year where municipality_code = %s and register = %s",
                        (code, register)).fetchall()
    return {r["year"]: r for r in rows}


def _class_totals(conn, code: str, register: str) -> dict[tuple[int, str], dict]:
    rows = conn.execute(
        """select year, incident_class, status, sum(n_registered) as n_registered, sum(n_excluded) as n_excluded,
                  sum(n_counted) as n_counted
           from marts.incident_year where municipality_code = %s and register = %s
           group by year, incident_class, status""", (code, register)).fetchall()
    return {(r["year"], r["incident_class"]): r for r in rows}


def test_ht_reported_accidents_and_near_misses(demo_warehouse):
    got = _episodes(demo_warehouse, HT, "reported_accident")
    assert [got[y]["n_counted"] for y in YEARS] == [34, 25, 4, 13]
    assert (got[2013]["n_registered"], got[2013]["n_excluded"]) == (21, 8)
    assert all(got[y]["status"] == "reported" for y in YEARS)
    assert all("169_near_miss_definition_2013" in got[y]["break_id"] for y in YEARS)


def test_ht_classes_episode_counted_once(demo_warehouse):
    got = _class_totals(demo_warehouse, HT, "reported_accident")
    assert [got[(y, "near_miss")]["n_registered"] for y in YEARS] == [30, 20, 3, 6]
    assert [got[(y, "threat")]["n_registered"] for y in YEARS] == [4, 5, 1, 15]
    assert [got[(y, "violence")]["n_registered"] for y in YEARS] == [0, 0, 0, 8]
    assert got[(2013, "violence")]["n_excluded"] == 8 and got[(2013, "threat")]["n_excluded"] == 8
    assert all(got[(y, "other_injury")]["n_registered"] >= 1 for y in YEARS)
    # Table 7.1's absence flags: one threat accident with absence in 2010, 2011 and 2012, none in 2013
    absence = {(r["year"], r["incident_class"]): r["n"] for r in demo_warehouse.execute(
        """select year, incident_class, sum(n_with_absence) as n from marts.incident_year
           where municipality_code = %s and register = 'reported_accident' and status = 'reported'
             and unit_name is not null group by year, incident_class""", (HT,)).fetchall()}
    assert [absence.get((y, "threat"), 0) for y in YEARS] == [1, 1, 1, 0]
    assert [absence.get((y, "near_miss"), 0) for y in YEARS] == [0, 0, 0, 0]
    # the excluded episodes stay in the warehouse, flagged with the reason
    excluded = demo_warehouse.execute(
        "select count(*) as n, count(exclusion_reason) as with_reason from intermediate.int_incident_registrations"
        " where municipality_code = %s and is_excluded", (HT,)).fetchone()
    assert excluded == {"n": 8, "with_reason": 8}


def test_fredericia_reported_accidents(demo_warehouse):
    got = _episodes(demo_warehouse, FR, "reported_accident")
    assert [got[y]["n_counted"] for y in YEARS] == [0, 5, 5, 10]
    assert all(got[y]["status"] == "reported" for y in YEARS)
    nestle = demo_warehouse.execute(
        "select sum(n_registered) as n from marts.incident_year where municipality_code = %s"
        " and register = 'reported_accident' and unit_name = 'Nestlegården' and year = 2013", (FR,)).fetchone()
    assert nestle["n"] == 10
    bostotten = demo_warehouse.execute(
        "select sum(n_registered) as n from marts.incident_year where municipality_code = %s"
        " and register = 'reported_accident' and unit_name = 'Bostøtten' and year = 2012", (FR,)).fetchone()
    assert bostotten["n"] == 2  # 'Bostøtten og ungeteam' through the unit-alias seed


def test_fredericia_internal_registrations(demo_warehouse):
    got = _class_totals(demo_warehouse, FR, "internal")
    assert got[(2012, "threat")]["n_counted"] == 1 and got[(2012, "violence")]["n_counted"] == 0
    assert got[(2013, "threat")]["n_counted"] == 7 and got[(2013, "violence")]["n_counted"] == 1
    assert got[(2011, "threat")]["status"] == "not_delivered" and got[(2011, "threat")]["n_counted"] is None


def test_odense(demo_warehouse):
    got = _episodes(demo_warehouse, ODENSE, "reported_accident")
    assert [got[y]["n_counted"] for y in YEARS] == [0, 1, 0, 0]
    classes = _class_totals(demo_warehouse, ODENSE, "reported_accident")
    assert [classes[(y, "violence")]["n_counted"] for y in YEARS] == [0, 1, 0, 0]
    assert [classes[(y, "threat")]["n_counted"] for y in YEARS] == [0, 0, 0, 0]


def test_use_of_force(demo_warehouse):
    ht = _episodes(demo_warehouse, HT, "use_of_force")
    assert [ht[y]["n_registered"] for y in YEARS] == [0, 5, 1, 4]
    assert (ht[2013]["n_excluded"], ht[2013]["n_counted"]) == (3, 1)
    odense = _episodes(demo_warehouse, ODENSE, "use_of_force")
    assert all((odense[y]["n_counted"], odense[y]["status"]) == (0, "reported") for y in YEARS)
    fr = _episodes(demo_warehouse, FR, "use_of_force")
    for y in YEARS:
        assert fr[y]["status"] == "not_delivered"
        assert (fr[y]["n_registered"], fr[y]["n_excluded"], fr[y]["n_counted"]) == (None, None, None)


def _exact_poisson_p(row: dict) -> float:
    """Two-sided exact conditional p of equal Poisson rates: given n episodes in all, the follow-up count is
    binomial with the follow-up's share of the exposure; p sums the outcomes no likelier than the one seen."""
    x0, x1 = row["count_baseline"], row["count_followup"]
    t0, t1 = float(row["exposure_baseline"]), float(row["exposure_followup"])
    n = x0 + x1
    pmf = binom.pmf(range(n + 1), n, t1 / (t0 + t1))
    return float(min(1.0, pmf[pmf <= pmf[x1] * (1 + 1e-7)].sum()))


def test_rate_change_report(demo_warehouse):
    rows = demo_warehouse.execute("select * from reporting.incident_rate_change").fetchall()
    got = {(r["municipality_code"], r["register"]): r for r in rows}
    ht = got[(HT, "reported_accident")]
    assert (ht["count_baseline"], ht["count_followup"]) == (63, 13)
    assert ht["crosses_break"] and "169_near_miss_definition_2013" in ht["break_id"]
    # every tested row's p-value is the exact conditional test of equal Poisson rates, recomputed here from
    # the row's published counts and exposures straight from the binomial distribution (scipy)
    tested = [r for r in rows if r["p_value"] is not None]
    assert ht in tested and len(tested) >= 3
    for r in tested:
        assert r["p_value"] == pytest.approx(_exact_poisson_p(r), rel=1e-9, abs=1e-12), r
        assert r["significant"] == (r["p_value"] <= ALPHA)
    assert got[(ODENSE, "reported_accident")]["low_count"]
    assert got[(FR, "use_of_force")]["status"] == "not_delivered"
    assert got[(FR, "use_of_force")]["p_value"] is None


def test_benchmark_comparison(demo_warehouse):
    rows = demo_warehouse.execute(
        "select distinct benchmark_id, benchmark_share_exposed_pct from reporting.incident_benchmark_comparison"
    ).fetchall()
    assert {float(r["benchmark_share_exposed_pct"]) for r in rows} == {46.5, 37.7, 33.4, 32.4}


def test_quarantined_inputs_never_reach_the_marts(demo_warehouse):
    leaked = demo_warehouse.execute(
        """select count(*) as n from marts.incident_episode_year e
           where e.status = 'reported' and not exists (
               select 1 from audit.delivery d where d.status = 'loaded' and d.municipality_code = e.municipality_code
                 and left(d.period, 4)::int = e.year and d.source in ('incidents', 'use_of_force'))""").fetchone()
    assert leaked["n"] == 0
