"""Yearly sick-leave figures from the monthly payroll (hr_payroll_csv), through the loader and dbt.

One throwaway database, a config of synthetic municipalities (TRIVSEL_CONFIG) and synthetic deliveries
written here from docs/sources/ (not from the sample generators):

- 991 delivers payroll only, 2012-01 … 2013-12 (data start after the configured baseline years begin), and an
  incident count for 2012;
- 992 delivers the same two years as an hr_unit_year_summary file, its figures computed independently here
  with pandas from 991's payroll, plus payroll of its own for 2012-03/04 (the summary must win) and 2014-01
  (no summary: the payroll figures appear, as a part year);
- 993 delivers payroll 2012-10 … 2013-12: its baseline year 2012 is a part year;
- 994 delivers payroll 2013 only: no baseline year, no change.

Expected figures come from pandas over the rows written, never from project code.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pandas as pd
import psycopg
import pytest
import throwaway_db
import yaml
from psycopg.rows import dict_row

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DB = "absence_payroll_yearly"
PAYROLL, SUMMARY, PART, LATE = "991", "992", "993", "994"
UNITS = ["Alfa", "Beta", "Gamma"]
HEADER = "Medarbejdernr;Enhed;Måned;Fraværskode;Fraværstekst;Fraværstimer;Normtimer;Årsværk"
CODES = {"SYG": "Egen sygdom", "DELSYG": "Delvis sygemeldt", "BARNSYG": "Barn syg", "OEVRIG": "Øvrigt fravær"}
#: docs/sources/hr_payroll_csv.md: only own sickness, full and partial, counts; a sick day is 7.4 hours
SICK_CODES = {"SYG", "DELSYG"}
HOURS_PER_DAY = 7.4
LABELS = {"pct_whole_group": "Sygefravær % af hele medarbejdergruppen",
          "pct_per_employee": "Sygefravær % pr. medarbejder",
          "days_per_employee": "Sygedage pr. medarbejder"}
#: one rounding step of a 4-decimal figure (the summary is delivered rounded, the payroll computed exactly)
STEP = 1e-4 + 1e-9


def _muni(code: str, name: str, absence_schemes: list[dict], incidents: list[dict] | None = None) -> dict:
    return {"code": code, "name": name,
            "units": [{"name": u, "valid_from": "2000-01-01"} for u in UNITS],
            "sources": {"survey": {"cadence": "wave", "schemes": []},
                        "hr_absence": {"cadence": "monthly", "schemes": absence_schemes},
                        "incidents": {"cadence": "yearly", "schemes": incidents or []},
                        "use_of_force": {"cadence": "yearly", "schemes": []}}}


def _config() -> dict:
    with (ROOT / "config" / "municipalities.yml").open(encoding="utf-8") as fh:
        real = yaml.safe_load(fh)
    payroll = {"scheme": "hr_payroll_csv", "files": "fravaer_*.csv"}
    summary = {"scheme": "hr_unit_year_summary", "files": "sygefravaer_aar_*.csv"}
    return {"settings": real["settings"], "municipalities": [
        _muni(PAYROLL, "Lønby", [payroll], [{"scheme": "incident_yearly_aggregate", "files": "*"}]),
        _muni(SUMMARY, "Summaby", [payroll, summary]),
        _muni(PART, "Halvby", [payroll]),
        _muni(LATE, "Senby", [payroll]),
    ]}


def _months(first: str, last: str) -> list[str]:
    return [p.strftime("%Y-%m") for p in pd.period_range(first, last, freq="M")]


def _payroll_rows(seed: int, months: list[str]) -> list[dict]:
    """One dict per delivered line: employees with FTE that changes, leavers and joiners, several codes."""
    rng = random.Random(seed)
    rows = []
    # (number, unit, FTE, first and last month employed): even-numbered employees all year, odd ones join
    # and leave
    staff = [(f"{seed}{i:03d}", UNITS[i % 3], rng.choice([1.0, 1.0, 0.8, 0.5]),
              1 if i % 2 == 0 else rng.randrange(1, 7), 12 if i % 2 == 0 else rng.randrange(6, 13))
             for i in range(36)]
    for month in months:
        m = int(month[5:])
        for number, unit, fte, first, last in staff:
            if not first <= m <= last:
                continue
            f = fte if m != 7 else round(fte * 0.6, 2)  # July: reduced hours
            hours = round(160.33 * f, 2)
            codes = [c for c in CODES if rng.random() < {"SYG": 0.3, "DELSYG": 0.1}.get(c, 0.08)]
            if not codes:
                rows.append({"emp": number, "unit": unit, "month": month, "code": "", "hours": 0.0,
                             "norm": hours, "fte": f})
            for code in codes:
                rows.append({"emp": number, "unit": unit, "month": month, "code": code,
                             "hours": round(rng.uniform(2, min(hours, 40)), 2), "norm": hours, "fte": f})
    return rows


def _dk(x: float, digits: int = 2) -> str:
    return f"{x:.{digits}f}".replace(".", ",")


def _write_payroll(inbox: Path, code: str, rows: list[dict]) -> list[tuple[Path, str]]:
    out = []
    for month, part in pd.DataFrame(rows).groupby("month"):
        path = inbox / code / "hr_absence" / month / f"fravaer_{month}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [HEADER] + [";".join([r.emp, r.unit, r.month, r.code, CODES.get(r.code, ""), _dk(r.hours),
                                      _dk(r.norm), _dk(r.fte)]) for r in part.itertuples()]
        path.write_bytes(("\r\n".join(lines) + "\r\n").encode("cp1252"))
        out.append((path, month))
    return out


def expected_unit_years(rows: list[dict]) -> pd.DataFrame:
    """The three metrics per unit and year, as docs/sources/hr_payroll_csv.md defines them."""
    df = pd.DataFrame(rows)
    df["sick"] = df["hours"].where(df["code"].isin(SICK_CODES), 0.0)
    em = df.groupby(["unit", "month", "emp"]).agg(sick=("sick", "sum"), norm=("norm", "first"),
                                                  fte=("fte", "first")).reset_index()
    um = em.groupby(["unit", "month"]).agg(sick=("sick", "sum"), norm=("norm", "sum"),
                                           fte=("fte", "sum")).reset_index()
    um["year"] = um["month"].str[:4].astype(int)
    uy = um.groupby(["unit", "year"]).agg(sick=("sick", "sum"), norm=("norm", "sum"), fte_sum=("fte", "sum"),
                                          months=("month", "nunique")).reset_index()
    uy["fte"] = uy["fte_sum"] / uy["months"]
    uy["pct_whole_group"] = 100 * uy["sick"] / uy["norm"]
    uy["pct_per_employee"] = uy["pct_whole_group"] / uy["fte"]
    uy["days_per_employee"] = uy["sick"] / HOURS_PER_DAY / uy["fte"]
    return uy


def _write_summary(inbox: Path, uy: pd.DataFrame) -> Path:
    path = inbox / SUMMARY / "hr_absence" / "2013-12" / "sygefravaer_aar_2012_2013.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["Enhed;År;Nøgletal;Værdi;Årsværk"]
    for r in uy.itertuples():
        for metric, label in LABELS.items():
            lines.append(f"{r.unit};{r.year};{label};{_dk(getattr(r, metric), 4)};{_dk(r.fte, 4)}")
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("cp1252"))
    return path


def _dbt(tmp: Path, *args: str) -> None:
    trivsel = str(Path(sys.executable).with_name("trivsel"))
    cmd = [trivsel, "dbt", *args, "--target-path", str(tmp / "target"), "--log-path", str(tmp / "logs")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, f"{' '.join(cmd[1:])}\n{proc.stdout[-8000:]}\n{proc.stderr[-3000:]}"


@pytest.fixture(scope="module")
def built(warehouse_url, tmp_path_factory, monkeypatch_module):
    """The deliveries loaded and the absence, incident and certified absence models built."""
    from trivsel import loading
    from trivsel.config import load_config
    from trivsel.keys import pseudonym_key

    tmp = tmp_path_factory.mktemp("payroll_yearly")
    url = throwaway_db.create(warehouse_url, DB)
    inbox = tmp / "inbox"
    config_path = tmp / "municipalities.yml"
    config_path.write_text(yaml.safe_dump(_config(), allow_unicode=True), encoding="utf-8")
    monkeypatch_module.setenv("WAREHOUSE_URL", url)
    monkeypatch_module.setenv("TRIVSEL_CONFIG", str(config_path))
    monkeypatch_module.setenv("TRIVSEL_INBOX", str(inbox))
    monkeypatch_module.setenv("TRIVSEL_ARCHIVE", str(tmp / "archive"))

    payroll = _payroll_rows(991, _months("2012-01", "2013-12"))
    summary_own = _payroll_rows(992, ["2012-03", "2012-04", "2014-01"])
    part = _payroll_rows(993, _months("2012-10", "2013-12"))
    files = {PAYROLL: _write_payroll(inbox, PAYROLL, payroll), SUMMARY: _write_payroll(inbox, SUMMARY, summary_own),
             PART: _write_payroll(inbox, PART, part),
             LATE: _write_payroll(inbox, LATE, _payroll_rows(994, _months("2013-01", "2013-12")))}
    files[SUMMARY].append((_write_summary(inbox, expected_unit_years(payroll)), "2013-12"))
    incident = inbox / PAYROLL / "incidents" / "2012-12" / "trusler_vold_2012.csv"
    incident.parent.mkdir(parents=True)
    incident.write_text("År;Type;Antal;Bemærkning\n2012;Trusler;3;\n2012;Vold;2;\n", encoding="utf-8")

    config = load_config()
    loading.sync_config(config)
    key = pseudonym_key()
    with psycopg.connect(url, autocommit=True) as conn:
        for code, deliveries in files.items():
            muni = config.municipality(code)
            for path, period in deliveries:
                out = loading.ingest_file(conn, path, muni, "hr_absence", period, "test-payroll-yearly", key)
                assert out.status == "loaded", out.line()
        out = loading.ingest_file(conn, incident, config.municipality(PAYROLL), "incidents", "2012-12",
                                  "test-payroll-yearly", key)
        assert out.status == "loaded", out.line()

    _dbt(tmp, "build", "--select", "+absence_change", "+incident_rate_year", "absence_unit_month",
         "fct_absence_employee_month", "--indirect-selection", "cautious")
    from trivsel.stats import absence as absence_stats

    with psycopg.connect(url) as conn:  # the statistics step, as the DAG runs it between models and certify
        absence_stats.run(conn)
        conn.commit()
    _dbt(tmp, "build", "--select", "cert_absence_unit_year", "cert_absence_change",
         "--vars", json.dumps({"small_cell_threshold": 5}))
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        conn.execute("drop schema if exists certified cascade")
        conn.execute("alter schema certified_next rename to certified")
        yield {"conn": conn, "payroll": payroll, "summary_own": summary_own, "part": part}
    monkeypatch_module.undo()
    throwaway_db.drop(warehouse_url, DB)


def _unit_years(conn, code: str) -> dict[tuple[str, int, str], dict]:
    rows = conn.execute("select * from marts.absence_unit_year where municipality_code = %s", (code,)).fetchall()
    return {(r["unit_name"], r["year"], r["metric"]): r for r in rows}


def _changes(conn, code: str) -> dict[tuple[str, str], dict]:
    rows = conn.execute("select * from reporting.absence_change where municipality_code = %s", (code,)).fetchall()
    return {(r["unit_name"], r["metric"]): r for r in rows}


def test_payroll_year_equals_summary_built_from_it(built):
    """The same two years as payroll (991) and as a unit-year summary (992) give the same figures, and
    both equal the figures computed here from the payroll rows."""
    conn = built["conn"]
    want = expected_unit_years(built["payroll"])
    from_payroll, from_summary = _unit_years(conn, PAYROLL), _unit_years(conn, SUMMARY)
    for r in want.itertuples():
        for metric in LABELS:
            p, s = from_payroll[(r.unit, r.year, metric)], from_summary[(r.unit, r.year, metric)]
            assert (p["source_scheme"], s["source_scheme"]) == ("hr_payroll_csv", "hr_unit_year_summary")
            assert p["value_status"] == s["value_status"] == "reported"
            assert (p["months_delivered"], p["is_part_year"]) == (12, False) == (s["months_delivered"],
                                                                                  s["is_part_year"])
            assert abs(float(p["value"]) - getattr(r, metric)) <= STEP, (r.unit, r.year, metric)
            assert abs(float(p["value"]) - float(s["value"])) <= STEP, (r.unit, r.year, metric)
            assert abs(float(p["fte"]) - r.fte) <= STEP and abs(float(s["fte"]) - r.fte) <= STEP
    for year in (2012, 2013):
        for metric in LABELS:
            mean = want[want["year"] == year][metric].mean()  # the unweighted mean of the units
            p, s = from_payroll[("(average)", year, metric)], from_summary[("(average)", year, metric)]
            assert p["is_average"] and p["n_units_reported"] == 3
            assert abs(float(p["value"]) - mean) <= STEP and abs(float(s["value"]) - mean) <= 2 * STEP
    assert {k[1] for k in from_payroll} == {2012, 2013}


def test_change_uses_the_years_that_exist(built):
    """991's data start in 2012: the change is 2013 − 2012 and says baseline_years '2012'; the summary
    municipality gets the same changes."""
    conn = built["conn"]
    want = expected_unit_years(built["payroll"]).set_index(["unit", "year"])
    payroll, summary = _changes(conn, PAYROLL), _changes(conn, SUMMARY)
    for unit in UNITS:
        for metric in LABELS:
            p, s = payroll[(unit, metric)], summary[(unit, metric)]
            assert p["computable"] is True and p["reason"] is None, p
            assert p["baseline_years"] == "2012" == s["baseline_years"]
            expected = want.loc[(unit, 2013), metric] - want.loc[(unit, 2012), metric]
            assert abs(float(p["change"]) - expected) <= 2 * STEP, (unit, metric)
            assert abs(float(p["change"]) - float(s["change"])) <= 3 * STEP, (unit, metric)
    for metric in LABELS:
        assert payroll[("(average)", metric)]["computable"] is True


def test_summary_takes_precedence_over_payroll(built):
    """992 delivers payroll for 2012-03/04 and a summary for 2012: absence_unit_year's 2012 is the summary's
    (12 months, as delivered); its 2014 payroll, with no summary, appears as a one-month part year. The
    payroll months stay in absence_unit_month."""
    conn = built["conn"]
    got = _unit_years(conn, SUMMARY)
    assert {r["source_scheme"] for k, r in got.items() if k[1] in (2012, 2013)} == {"hr_unit_year_summary"}
    own = expected_unit_years(built["summary_own"]).set_index(["unit", "year"])
    for unit in UNITS:
        r = got[(unit, 2014, "pct_whole_group")]
        assert (r["source_scheme"], r["months_delivered"], r["is_part_year"]) == ("hr_payroll_csv", 1, True)
        assert abs(float(r["value"]) - own.loc[(unit, 2014), "pct_whole_group"]) <= STEP
        # its own 2012 payroll (two months) differs from the summary: the summary is what is shown
        assert abs(own.loc[(unit, 2012), "pct_whole_group"] - float(got[(unit, 2012, "pct_whole_group")]["value"])) > STEP
    months = conn.execute("select distinct month from marts.absence_unit_month where municipality_code = %s"
                          " and source_scheme = 'hr_payroll_csv' order by 1", (SUMMARY,)).fetchall()
    assert [r["month"] for r in months] == ["2012-03", "2012-04", "2014-01"]


def test_part_year_flagged_and_no_change_from_it(built):
    """993 delivers 2012-10 … 2013-12: 2012 has 3 months, flagged; its change is withheld with the reason."""
    conn = built["conn"]
    got = _unit_years(conn, PART)
    for unit in [*UNITS, "(average)"]:
        assert (got[(unit, 2012, "days_per_employee")]["months_delivered"],
                got[(unit, 2012, "days_per_employee")]["is_part_year"]) == (3, True)
        assert (got[(unit, 2013, "days_per_employee")]["months_delivered"],
                got[(unit, 2013, "days_per_employee")]["is_part_year"]) == (12, False)
    for (unit, metric), r in _changes(conn, PART).items():
        assert r["computable"] is False and r["change"] is None, (unit, metric)
        assert r["baseline_years"] == "2012"
        assert "part year" in r["reason"] and "2012 (3 of 12 months)" in r["reason"], r["reason"]


def test_no_change_when_data_start_after_the_baseline_years(built):
    conn = built["conn"]
    got = _unit_years(conn, LATE)
    assert {k[1] for k in got} == {2013} and all(r["months_delivered"] == 12 for r in got.values())
    changes = _changes(conn, LATE)
    assert set(changes) == {(u, m) for u in [*UNITS, "(average)"] for m in LABELS}
    for r in changes.values():
        assert (r["computable"], r["change"], r["baseline_years"]) == (False, None, "none")
        assert r["reason"].startswith("no baseline year delivered: sick-leave data start in 2013"), r["reason"]


def test_payroll_fte_reaches_incident_rates(built):
    conn = built["conn"]
    want = expected_unit_years(built["payroll"])
    fte = want[want["year"] == 2012]["fte"].sum()
    rows = conn.execute("select * from marts.incident_rate_year where municipality_code = %s and year = 2012"
                        " and register = 'reported_accident'", (PAYROLL,)).fetchall()
    assert rows
    for r in rows:
        assert r["n_units_with_fte"] == 3
        assert abs(float(r["fte"]) - fte) <= 3 * STEP
        assert r["n_counted"] == 5
        assert abs(float(r["rate_per_100_fte"]) - round(100 * 5 / fte, 2)) <= 0.01


def test_certified_and_report_have_the_payroll_municipality(built):
    from trivsel import report

    conn = built["conn"]
    certified = conn.execute("select * from certified.absence_unit_year where municipality_code = %s",
                             (PAYROLL,)).fetchall()
    assert {(r["year"], r["metric"]) for r in certified} == {(y, m) for y in (2012, 2013) for m in LABELS}
    assert all(r["value"] is not None and not r["suppressed"] for r in certified)
    changes = conn.execute("select * from certified.absence_change where municipality_code = %s",
                           (PAYROLL,)).fetchall()
    assert changes and all(r["computable"] and r["baseline_years"] == "2012" for r in changes)
    html = report.section_absence(conn, {PAYROLL: "Lønby", SUMMARY: "Summaby", PART: "Halvby"})
    assert "Lønby" in html and "Halvby" in html
    average = next(r for r in certified if r["is_average"] and r["year"] == 2013
                   and r["metric"] == "pct_whole_group")
    assert report.fmt(average["value"], 2) in html
    # version 2 carries the part-year flag to the evaluator and the report marks it; version 1 is unchanged
    part = conn.execute("select * from certified.absence_unit_year where municipality_code = %s and year = 2012",
                        (PART,)).fetchall()
    assert part and all(r["is_part_year"] and r["months_delivered"] == 3 for r in part)
    assert all(not r["is_part_year"] and r["months_delivered"] == 12 for r in certified)
    # every 2012 cell of 993 that shows a figure or its suppression mark carries the part-year mark
    shown = [r for r in part if r["value_status"] in ("reported", "excluded") or r["suppressed"]]
    assert shown and html.count("*(3)") == len(shown)
    v1 = {r["column_name"] for r in conn.execute("select column_name from information_schema.columns where"
                                                 " table_schema = 'certified' and table_name = 'absence_unit_year_v1'")}
    assert "value" in v1 and "months_delivered" not in v1


def _jackknife_se(rows: list[dict], unit: str, metric: str) -> tuple[float, int]:
    """The jackknife standard error of the unit's 2013 − 2012 change over its employees, with pandas from the
    rows written (independent of the bootstrap): leave one employee out, recompute, spread."""
    df = pd.DataFrame(rows)
    df = df[df["unit"] == unit]
    df["sick"] = df["hours"].where(df["code"].isin(SICK_CODES), 0.0)
    em = df.groupby(["emp", "month"]).agg(sick=("sick", "sum"), norm=("norm", "first"), fte=("fte", "first"))
    em = em.reset_index()
    em["year"] = em["month"].str[:4].astype(int)
    months = em.groupby("year")["month"].nunique()

    def change(part: pd.DataFrame) -> float:
        uy = part.groupby("year").agg(sick=("sick", "sum"), norm=("norm", "sum"), fte=("fte", "sum"))
        fte = uy["fte"] / months
        values = {"pct_whole_group": 100 * uy["sick"] / uy["norm"],
                  "pct_per_employee": 100 * uy["sick"] / uy["norm"] / fte,
                  "days_per_employee": uy["sick"] / HOURS_PER_DAY / fte}[metric]
        return float(values[2013] - values[2012])

    employees = sorted(em["emp"].unique())
    loo = [change(em[em["emp"] != e]) for e in employees]
    n = len(loo)
    mean = sum(loo) / n
    return ((n - 1) / n * sum((x - mean) ** 2 for x in loo)) ** 0.5, n


def test_change_ci_from_the_employees(built):
    """991 (payroll only): every unit change has a bootstrap interval over its employees that holds the change,
    as wide as the jackknife says (within a factor 2: 12 employees a unit); certified publishes it with the
    change. 992's changes are from its delivered summary: no employees, no interval."""
    conn = built["conn"]
    cis = {(r["unit_name"], r["metric"]): r for r in conn.execute(
        "select * from reporting.absence_change_ci where municipality_code = %s", (PAYROLL,)).fetchall()}
    changes = _changes(conn, PAYROLL)
    certified = {(r["unit_name"], r["metric"]): r for r in conn.execute(
        "select * from certified.absence_change where municipality_code = %s", (PAYROLL,)).fetchall()}
    assert set(cis) == {(u, m) for u in UNITS for m in LABELS}
    for (unit, metric), ci in cis.items():
        change = float(changes[(unit, metric)]["change"])
        assert ci["change"] == pytest.approx(change, abs=2 * STEP)
        assert ci["change_ci_low"] < change < ci["change_ci_high"], (unit, metric, ci)
        se, n = _jackknife_se(built["payroll"], unit, metric)
        assert ci["n_employees"] == n
        width = ci["change_ci_high"] - ci["change_ci_low"]
        assert 0.5 < width / (2 * 1.96 * se) < 2, (unit, metric, width, se)
        c = certified[(unit, metric)]
        assert float(c["change_ci_low"]) == pytest.approx(ci["change_ci_low"], abs=STEP)
        assert float(c["change_ci_high"]) == pytest.approx(ci["change_ci_high"], abs=STEP)
    assert certified[("(average)", "pct_whole_group")]["change_ci_low"] is None
    summary = conn.execute("select count(*) as n from reporting.absence_change_ci where municipality_code = %s",
                           (SUMMARY,)).fetchone()["n"]
    assert summary == 0
