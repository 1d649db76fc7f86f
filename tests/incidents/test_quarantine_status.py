"""Delivered, partly quarantined, quarantined, not delivered: four different facts, down to reporting
(issue 12 §5).

Real files through the real loader into a throwaway database of the session's test server, then the real
dbt models and the rate statistics:
- Høje-Taastrup (169) incidents: 2010 and 2011 loaded, the 2012 registry export rejected, 2013's registry
  export loaded but its case review rejected;
- Fredericia (607) incidents: the reported accidents of 2010-2012 rejected, 2013 loaded, the internal
  register not sent; sick leave: the 2010-2012 workbook loaded, the 2013 workbook rejected, a 2014-01 month
  workbook with one unit's figure in parentheses, (21,95).
The certified incident and coverage models are built over them and the report's incident section rendered.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import openpyxl
import psycopg
import pytest
import throwaway_db
from psycopg.rows import dict_row

DB = "status_quarantine"
HT, FR = "169", "607"
BAD_CSV = b"Kolonne;Andet\n1;2\n"
MODELS = ("+incident_year", "+incident_episode_year", "+incident_rate_year", "+incident_benchmark_comparison",
          "+incident_comparability_breaks", "+absence_unit_month", "+absence_change", "+delivery_coverage")


def _dbt(target: Path, *args: str) -> None:
    trivsel = str(Path(sys.executable).with_name("trivsel"))
    cmd = [trivsel, "dbt", *args, "--target-path", str(target / "target"), "--log-path", str(target / "logs")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, env=dict(os.environ))
    assert proc.returncode == 0, f"{' '.join(cmd[1:])}\n{proc.stdout[-8000:]}\n{proc.stderr[-3000:]}"


def _parenthesised_month(sample: Path, target: Path) -> Path:
    """The sample month workbook with Bostøtte's figure written as the scheme's excluded value '(21,95)'."""
    wb = openpyxl.load_workbook(sample)
    ws = wb["Månedsoversigt"]
    for row in ws.iter_rows():
        if row[0].value == "Bostøtte":
            row[3].value = "(21,95)"
            break
    else:
        raise AssertionError("no Bostøtte row in the sample month sheet")
    target.parent.mkdir(parents=True, exist_ok=True)
    wb.save(target)
    return target


@pytest.fixture(scope="module")
def wh(warehouse_url, tmp_path_factory, monkeypatch_module):
    from trivsel.config import load_config
    from trivsel.keys import pseudonym_key
    from trivsel.loading import ingest_file, sync_config
    from trivsel.samples import absence, incidents
    from trivsel.stats import incidents as incident_stats

    url = throwaway_db.create(warehouse_url, DB)
    monkeypatch_module.setenv("WAREHOUSE_URL", url)
    samples = tmp_path_factory.mktemp("samples")
    incidents.generate(samples)
    absence.generate(samples)
    bad = tmp_path_factory.mktemp("bad")

    def corrupt(relative: str) -> Path:
        path = bad / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"PK not a workbook" if path.suffix == ".xlsx" else BAD_CSV)
        return path

    deliveries = [
        (HT, "incidents", "2010-12", samples / "169/incidents/2010-12/arbejdsskader_2010.csv"),
        (HT, "incidents", "2011-12", samples / "169/incidents/2011-12/arbejdsskader_2011.csv"),
        (HT, "incidents", "2012-12", corrupt("169/incidents/2012-12/arbejdsskader_2012.csv")),
        (HT, "incidents", "2013-12", samples / "169/incidents/2013-12/arbejdsskader_2013.csv"),
        (HT, "incidents", "2013-12", corrupt("169/incidents/2013-12/sagsgennemgang_2013.csv")),
        (FR, "incidents", "2010-12", corrupt("607/incidents/2010-12/anmeldte_2010.csv")),
        (FR, "incidents", "2011-12", corrupt("607/incidents/2011-12/anmeldte_2011.csv")),
        (FR, "incidents", "2012-12", corrupt("607/incidents/2012-12/anmeldte_2012.csv")),
        (FR, "incidents", "2013-12", samples / "607/incidents/2013-12/anmeldte_2013.csv"),
        (FR, "hr_absence", "2012-12", samples / "607/hr_absence/2012-12/sygefravaer_2010-2012.xlsx"),
        (FR, "hr_absence", "2013-12", corrupt("607/hr_absence/2013-12/sygefravaer_2013.xlsx")),
        (FR, "hr_absence", "2014-01", _parenthesised_month(
            samples / "607/hr_absence/2014-01/sygefravaer_2014-01.xlsx", bad / "607/sygefravaer_2014-01.xlsx")),
    ]
    config = load_config()
    sync_config(config)
    outcomes = {}
    with psycopg.connect(url, autocommit=True) as load_conn:  # the loader reads tuple rows
        for code, source, period, path in deliveries:
            out = ingest_file(load_conn, path, config.municipality(code), source, period, "test-status",
                              pseudonym_key())
            outcomes[(code, period, path.name)] = out.status
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        for period in ("2010-12", "2011-12", "2012-12", "2013-12", "2014-01"):
            conn.execute("insert into audit.period_run (period, run_id, as_of) values (%s, 'test-status', %s)",
                         (period, f"{int(period[:4]) + 1}-01-01" if period.endswith("12") else "2014-02-01"))
        target = tmp_path_factory.mktemp("dbt")
        _dbt(target, "build", "--select", *MODELS, "--exclude", "path:models/certified")
        incident_stats.run(conn)
        # the certified incident and coverage tables as the certify task builds them (into certified_next),
        # then put where the report reads them
        _dbt(target, "build", "--select", "cert_incident_episode_year", "cert_incident_rate_change",
             "cert_delivery_coverage")
        conn.execute("drop schema if exists certified cascade")
        conn.execute("alter schema certified_next rename to certified")
        yield conn, outcomes
    monkeypatch_module.delenv("WAREHOUSE_URL")
    throwaway_db.drop(warehouse_url, DB)


def _rows(conn, sql: str, *params) -> list[dict]:
    return conn.execute(sql, params).fetchall()


def test_the_files_were_loaded_or_quarantined_as_arranged(wh):
    _conn, outcomes = wh
    quarantined = {k for k, s in outcomes.items() if s == "quarantined"}
    assert {(c, p) for c, p, _n in quarantined} == {
        (HT, "2012-12"), (HT, "2013-12"), (FR, "2010-12"), (FR, "2011-12"), (FR, "2012-12"), (FR, "2013-12")}
    assert outcomes[(HT, "2013-12", "arbejdsskader_2013.csv")] == "loaded"
    assert outcomes[(FR, "2014-01", "sygefravaer_2014-01.xlsx")] == "loaded"


def test_coverage_says_partly_quarantined_and_quarantined(wh):
    conn, _ = wh
    got = {(r["municipality_code"], r["source"], r["period"]): r for r in _rows(
        conn, "select * from marts.delivery_coverage where municipality_code in (%s, %s)", HT, FR)}
    assert got[(HT, "incidents", "2013-12")]["status"] == "partly_quarantined"
    assert "sagsgennemgang_2013.csv" in got[(HT, "incidents", "2013-12")]["reason"]
    assert got[(HT, "incidents", "2012-12")]["status"] == "quarantined"
    assert got[(HT, "incidents", "2011-12")]["status"] == "delivered"
    assert got[(FR, "hr_absence", "2013-12")]["status"] == "quarantined"


def test_incident_year_tables_tell_quarantined_from_not_delivered(wh):
    conn, _ = wh
    for table in ("marts.incident_year", "marts.incident_episode_year", "marts.incident_rate_year"):
        rows = _rows(conn, f"select municipality_code, register, year, status, n_counted from {table}"
                           " where municipality_code in (%s, %s)", HT, FR)
        by_key: dict[tuple, set] = {}
        for r in rows:
            by_key.setdefault((r["municipality_code"], r["register"], r["year"]), set()).add(r["status"])
        assert by_key[(FR, "reported_accident", 2010)] == {"quarantined"}, table
        assert by_key[(FR, "reported_accident", 2012)] == {"quarantined"}, table
        assert by_key[(FR, "reported_accident", 2013)] == {"reported"}, table
        assert by_key[(FR, "internal", 2012)] == {"not_delivered"}, table
        assert by_key[(HT, "reported_accident", 2012)] == {"quarantined"}, table
        assert by_key[(HT, "reported_accident", 2013)] == {"partly_quarantined"}, table
        assert by_key[(HT, "reported_accident", 2011)] == {"reported"}, table
        # rejected is not zero: no counts where nothing was loaded; the loaded part keeps its counts
        assert all(r["n_counted"] is None for r in rows if r["status"] in ("quarantined", "not_delivered")), table
        partly = [r for r in rows if r["status"] == "partly_quarantined"]
        assert partly and any(r["n_counted"] for r in partly), table


def test_benchmark_comparison_carries_the_status(wh):
    conn, _ = wh
    rows = _rows(conn, "select distinct municipality_code, year, status from reporting.incident_benchmark_comparison"
                       " where municipality_code = %s and register = 'reported_accident'", FR)
    assert {r["year"]: r["status"] for r in rows if r["year"] in (2012, 2013)} == {
        2012: "quarantined", 2013: "reported"}


def test_rate_change_names_quarantined_years(wh):
    conn, _ = wh
    got = {(r["municipality_code"], r["register"]): r for r in _rows(
        conn, "select * from reporting.incident_rate_change where municipality_code in (%s, %s)", HT, FR)}
    fr = got[(FR, "reported_accident")]
    assert fr["status"] == "quarantined" and fr["p_value"] is None
    assert "not delivered in the baseline" not in fr["note"]
    assert "2010 quarantined, 2011 quarantined, 2012 quarantined" in fr["note"]
    ht = got[(HT, "reported_accident")]
    assert ht["status"] == "partly_quarantined" and "2013 partly quarantined" in ht["note"]
    internal = got[(FR, "internal")]
    assert internal["status"] == "not_delivered" and "not delivered in the baseline" in internal["note"]


def test_parenthesised_month_value_is_kept_and_flagged_excluded(wh):
    conn, _ = wh
    rows = _rows(conn, "select unit_name, month, sick_leave_pct, value_status, value_text from"
                       " marts.absence_unit_month where municipality_code = %s and month = '2014-01'", FR)
    bo = next(r for r in rows if r["value_text"] == "(21,95)")  # Bostøtte, by its canonical unit name
    assert bo["unit_name"] and bo["value_status"] == "excluded"
    assert float(bo["sick_leave_pct"]) == pytest.approx(21.95)
    ej = next(r for r in rows if r["value_text"] == "Ej oplyst")
    assert ej["value_status"] == "not_reported" and ej["sick_leave_pct"] is None
    # the yearly table keeps such a value the same way (Ungeteam's (19,78) in 2012)
    year = _rows(conn, "select value, value_status from marts.absence_unit_year where municipality_code = %s"
                       " and year = 2012 and value_status = 'excluded'", FR)
    assert year and all(r["value"] is not None for r in year)


def test_absence_change_says_the_followup_year_is_quarantined(wh):
    conn, _ = wh
    rows = _rows(conn, "select unit_name, followup_status, computable, reason from reporting.absence_change"
                       " where municipality_code = %s and followup_year = 2013", FR)
    assert rows
    assert {r["followup_status"] for r in rows} == {"quarantined"}
    assert all(not r["computable"] and "2013 is quarantined" in r["reason"] for r in rows)


def test_certified_tables_carry_the_statuses(wh):
    conn, _ = wh
    cov = {(r["municipality_code"], r["period"]): r["status"] for r in _rows(
        conn, "select * from certified.delivery_coverage where source = 'incidents'")}
    assert cov[(HT, "2013-12")] == "partly_quarantined" and cov[(FR, "2012-12")] == "quarantined"
    v1 = {(r["municipality_code"], r["period"]): r["status"] for r in _rows(
        conn, "select * from certified.delivery_coverage_v1 where source = 'incidents'")}
    assert v1[(HT, "2013-12")] == "delivered" and v1[(FR, "2012-12")] == "quarantined"
    episodes = {(r["municipality_code"], r["register"], r["year"]): r["status"] for r in _rows(
        conn, "select * from certified.incident_episode_year")}
    assert episodes[(FR, "reported_accident", 2011)] == "quarantined"
    assert episodes[(FR, "internal", 2011)] == "not_delivered"
    assert episodes[(HT, "reported_accident", 2013)] == "partly_quarantined"
    change = {(r["municipality_code"], r["register"]): r for r in _rows(
        conn, "select * from certified.incident_rate_change")}
    assert change[(FR, "reported_accident")]["status"] == "quarantined"
    assert "2012 quarantined" in change[(FR, "reported_accident")]["note"]


def _section_row(html: str, municipality: str, register_da: str) -> str:
    section = next(part for part in html.split("<h4>") if part.startswith(municipality))
    return next(row for row in section.split("<tr>") if row.startswith(f"<td>{register_da}"))


def test_report_says_rejected_partly_rejected_and_not_delivered_in_danish(wh):
    from trivsel import report

    conn, _ = wh
    html = report.section_incidents(conn, {HT: "Høje-Taastrup", FR: "Fredericia"})
    fr_reported = _section_row(html, "Fredericia", "Anmeldte arbejdsulykker")
    assert fr_reported.count("afvist (karantæne)") == 3 and "ikke leveret" not in fr_reported
    fr_internal = _section_row(html, "Fredericia", "Interne registreringer")
    assert "ikke leveret" in fr_internal and "afvist" not in fr_internal
    ht_reported = _section_row(html, "Høje-Taastrup", "Anmeldte arbejdsulykker")
    assert ht_reported.count("delvist afvist") == 1 and ht_reported.count("afvist (karantæne)") == 1
