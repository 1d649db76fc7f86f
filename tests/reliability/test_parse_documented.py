"""Issue 12 section 4 through the loader: files parsed the documented way or quarantined with a reason, and
every file in the inbox accounted for. Each test has a database of its own (`wh`)."""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import pytest
from rel_helpers import sample_file

from trivsel import loading
from trivsel.config import load_config

PAYROLL = "169/hr_absence/2014-01/fravaer_2014-01.csv"
PERIOD = "2014-01"


def audit(wh, delivery_id: int) -> dict:
    return wh.conn.execute(
        "select municipality_code, source, period, scheme, file_name, status, reason, checksum_sha256,"
        " archive_path, size_bytes from audit.delivery where delivery_id = %s", (delivery_id,)).fetchone()


def issues(wh, delivery_id: int) -> list[tuple]:
    return wh.conn.execute("select row_number, column_name, check_name, reason, value from"
                           " quarantine.delivery_issue where delivery_id = %s order by row_number nulls first",
                           (delivery_id,)).fetchall()


# ------------------------------------------------------------------ every file is accounted for


UNROUTABLE = {
    # inbox-relative path -> (municipality_code, source, period, words in the reason)
    "999/hr_absence/2014-01/fravaer_2014-01.csv": (None, None, None, "municipality folder '999'"),
    "169/sygefravaer/2014-01/fravaer_2014-01.csv": ("169", None, None, "source folder 'sygefravaer'"),
    "169/hr_absence/2014-3/fravaer_2014-03.csv": ("169", "hr_absence", None, "period folder '2014-3'"),
    "169/hr_absence/2014-13/fravaer_2014-13.csv": ("169", "hr_absence", None, "period folder '2014-13'"),
    "169/hr_absence/2014-01/januar/fravaer_2014-01.csv": ("169", "hr_absence", "2014-01", "sub-folder 'januar'"),
    "169/readme.txt": ("169", None, None, "outside any source folder"),
}


def test_unroutable_files_are_archived_recorded_and_logged(wh, sample_root, caplog):
    good = sample_file(sample_root, PAYROLL).read_bytes()
    wh.put(PAYROLL, good)
    for k, relative in enumerate(UNROUTABLE):
        wh.put(relative, good + f"\r\n{k}".encode())  # distinct bytes per file
    with caplog.at_level(logging.WARNING, logger="trivsel.loading"):
        swept = loading.record_unroutable(wh.conn, load_config().codes, run_id="test")  # the DAG's plan step
        out = loading.ingest_municipality("169", PERIOD, "test")
    assert [o.status for o in out if o.file_name == "fravaer_2014-01.csv" and o.source == "hr_absence"
            and o.period == PERIOD] == ["loaded"]
    assert {o.status for o in swept} == {"unroutable"}
    rows = wh.conn.execute("select delivery_id, municipality_code, source, period, reason, checksum_sha256,"
                           " archive_path, size_bytes, scheme from audit.delivery where status = 'unroutable'"
                           " order by delivery_id").fetchall()
    assert len(rows) == len(UNROUTABLE)
    by_path = {}
    for r in rows:
        relative = next(p for p in UNROUTABLE if f"unroutable {p}:" in r[4])
        by_path[relative] = r
    assert set(by_path) == set(UNROUTABLE)
    for relative, (code, source, period, words) in UNROUTABLE.items():
        _did, got_code, got_source, got_period, reason, digest, archive_path, size, scheme = by_path[relative]
        assert (got_code, got_source, got_period, scheme) == (code, source, period, None), relative
        assert words in reason, reason
        archived = Path(archive_path)
        assert archived.is_relative_to(wh.archive) and archived.read_bytes() == (wh.inbox / relative).read_bytes()
        assert loading.checksum(archived) == (digest, size)
        assert any(relative in rec.getMessage() and "unroutable" in rec.getMessage() for rec in caplog.records), \
            relative
    # the next run records nothing twice; new bytes at the same place are a new unroutable delivery
    assert loading.record_unroutable(wh.conn, load_config().codes, run_id="again") == []
    assert [o.status for o in loading.ingest_municipality("169", PERIOD, "again")] == ["unchanged"]
    wh.put("999/hr_absence/2014-01/fravaer_2014-01.csv", good + b"\r\nchanged")
    again = loading.record_unroutable(wh.conn, load_config().codes, run_id="third")
    assert [(o.status, o.file_name) for o in again] == [("unroutable", "fravaer_2014-01.csv")]


def test_unroutable_rows_pass_the_staging_contract(wh):
    """The audit table's constraints take an unroutable row with nulls, and keep rejecting them otherwise."""
    import psycopg

    wh.put("abc/x.csv", b"x")
    [o] = loading.record_unroutable(wh.conn, load_config().codes)
    assert audit(wh, o.delivery_id)[:3] == (None, None, None)
    with pytest.raises(psycopg.errors.CheckViolation):
        wh.conn.execute("update audit.delivery set status = 'quarantined' where delivery_id = %s",
                        (o.delivery_id,))


# ------------------------------------------------------------------ periods


def test_future_period_is_quarantined(wh, sample_root):
    future = "2031-01"
    assert future > date.today().strftime("%Y-%m")
    wh.put(f"169/hr_absence/{future}/fravaer_{future}.csv", sample_file(sample_root, PAYROLL).read_bytes())
    [out] = loading.ingest_municipality("169", future, "test")
    assert out.status == "quarantined"
    row = audit(wh, out.delivery_id)
    assert row[5] == "quarantined" and "period 2031-01 is in the future" in row[6]
    assert Path(row[8]).read_bytes() == (wh.inbox / f"169/hr_absence/{future}/fravaer_{future}.csv").read_bytes()
    assert [(i[2], i[4]) for i in issues(wh, out.delivery_id)] == [("period", future)]
    assert wh.conn.execute("select count(*) from raw.hr_payroll_absence where delivery_id = %s",
                           (out.delivery_id,)).fetchone()[0] == 0


# ------------------------------------------------------------------ reverting a correction


def _hours(wh, delivery_id: int) -> list:
    return [r[0] for r in wh.conn.execute("select absence_hours from raw.hr_payroll_absence where delivery_id = %s"
                                          " order by source_row", (delivery_id,))]


def test_putting_the_original_back_makes_it_current_again(wh, sample_root):
    original = sample_file(sample_root, PAYROLL).read_bytes()
    text = original.decode("cp1252").splitlines()
    header = text[0].split(";")
    first = text[1].split(";")
    first[header.index("Fraværstimer")] = "99,99"
    corrected = ("\r\n".join([text[0], ";".join(first), *text[2:]]) + "\r\n").encode("cp1252")

    wh.put(PAYROLL, original)
    [v1] = loading.ingest_municipality("169", PERIOD, "run1")
    wh.put(PAYROLL, corrected)  # the correction, under the same name
    [v2] = loading.ingest_municipality("169", PERIOD, "run2")
    assert (v1.status, v2.status) == ("loaded", "loaded")
    assert audit(wh, v1.delivery_id)[5] == "superseded"

    wh.put(PAYROLL, original)  # the original put back: the correction is withdrawn
    [v3] = loading.ingest_municipality("169", PERIOD, "run3")
    assert v3.status == "loaded", v3.line()
    assert v3.delivery_id not in (v1.delivery_id, v2.delivery_id)
    statuses = dict(wh.conn.execute("select delivery_id, status from audit.delivery where municipality_code = '169'"
                                    " and source = 'hr_absence' and period = %s", (PERIOD,)).fetchall())
    assert statuses == {v1.delivery_id: "superseded", v2.delivery_id: "superseded", v3.delivery_id: "loaded"}
    assert _hours(wh, v3.delivery_id) == _hours(wh, v1.delivery_id) != _hours(wh, v2.delivery_id)
    history = wh.conn.execute("select delivery_id, version, superseded_by from audit.delivery_history"
                              " where period = %s and source = 'hr_absence' order by delivery_id",
                              (PERIOD,)).fetchall()
    assert history == [(v1.delivery_id, 1, v2.delivery_id), (v2.delivery_id, 2, v3.delivery_id),
                       (v3.delivery_id, 3, None)]

    # a re-run changes nothing; a copy of the current version under another name is a duplicate
    assert [o.status for o in loading.ingest_municipality("169", PERIOD, "run4")] == ["unchanged"]
    wh.put("169/hr_absence/2014-01/fravaer_2014-01_kopi.csv", original)
    outs = {o.file_name: o for o in loading.ingest_municipality("169", PERIOD, "run5")}
    assert outs["fravaer_2014-01_kopi.csv"].status == "duplicate"
    assert f"delivery {v3.delivery_id}" in outs["fravaer_2014-01_kopi.csv"].reason
    assert outs["fravaer_2014-01.csv"].status == "unchanged"


def test_original_back_under_another_name(wh, sample_root):
    """Correction and original side by side in the inbox never flip-flop; the original under a new name does."""
    original = sample_file(sample_root, PAYROLL).read_bytes()
    corrected = original + b"\r\n"  # same rows, other bytes
    wh.put(PAYROLL, original)
    [v1] = loading.ingest_municipality("169", PERIOD, "run1")
    wh.put("169/hr_absence/2014-01/fravaer_2014-01_rettet.csv", corrected)
    outs = {o.file_name: o for o in loading.ingest_municipality("169", PERIOD, "run2")}
    v2 = outs["fravaer_2014-01_rettet.csv"]
    assert (outs["fravaer_2014-01.csv"].status, v2.status) == ("unchanged", "loaded")
    for run in ("run3", "run4"):  # both files stay: nothing changes
        assert {o.status for o in loading.ingest_municipality("169", PERIOD, run)} == {"unchanged"}
    wh.put("169/hr_absence/2014-01/fravaer_2014-01_igen.csv", original)
    outs = {o.file_name: o for o in loading.ingest_municipality("169", PERIOD, "run5")}
    v3 = outs["fravaer_2014-01_igen.csv"]
    assert v3.status == "loaded"
    assert audit(wh, v2.delivery_id)[5] == "superseded" and audit(wh, v1.delivery_id)[5] == "superseded"


# ------------------------------------------------------------------ numbers and fields in every CSV scheme

CSV_SAMPLES = [
    ("hr_payroll_csv", PAYROLL, "cp1252"),
    ("hr_unit_year_summary", "169/hr_absence/2013-12/sygefravaer_aar_2010-2013.csv", "cp1252"),
    ("ohs_registry_export", "169/incidents/2013-12/arbejdsskader_2013.csv", "utf-8-sig"),
    ("use_of_force_yearly", "169/use_of_force/2013-12/magtanvendelser_2013.csv", "utf-8-sig"),
    ("incident_yearly_aggregate", "461/incidents/2013-12/trusler_vold_2013.csv", "utf-8-sig"),
    ("reported_accidents_by_unit", "607/incidents/2013-12/anmeldte_2013.csv", "utf-8-sig"),
    ("internal_incident_register", "607/incidents/2013-12/interne_2013.csv", "utf-8-sig"),
    ("survey_respondent_csv", "169/survey/2013-05/besvarelser_169_2013-05.csv", "utf-8-sig"),
    ("survey_population_csv", "169/survey/2013-05/maalgruppe_169_2013-05.csv", "utf-8-sig"),
]


def _ingest_one(wh, relative: str):
    code, source, period, name = relative.split("/")
    muni = load_config().municipality(code)
    from trivsel.keys import pseudonym_key

    return loading.ingest_file(wh.conn, wh.inbox / relative, muni, source, period, "test", pseudonym_key())


@pytest.mark.parametrize("scheme, relative, encoding", CSV_SAMPLES, ids=[c[0] for c in CSV_SAMPLES])
def test_extra_field_is_rejected_with_its_row_in_every_csv_scheme(wh, sample_root, scheme, relative, encoding):
    lines = sample_file(sample_root, relative).read_bytes().splitlines()
    sep = b";" if b";" in lines[0] else b","
    lines[1] = lines[1] + sep + b"ekstra"  # row 2 gets a field the header does not name
    wh.put(relative, b"\r\n".join(lines) + b"\r\n")
    out = _ingest_one(wh, relative)
    assert out.status == "quarantined", out.line()
    assert out.scheme == scheme
    found = issues(wh, out.delivery_id)
    fields = len(lines[0].split(sep))
    assert [(i[0], i[1]) for i in found] == [(2, None)], found
    assert f"{fields + 1} fields, the header has {fields}" in found[0][3]


UTF8_SAMPLES = [c for c in CSV_SAMPLES if c[2] == "utf-8-sig"]


@pytest.mark.parametrize("scheme, relative, encoding", UTF8_SAMPLES, ids=[c[0] for c in UTF8_SAMPLES])
def test_encoding_error_names_its_line(wh, sample_root, scheme, relative, encoding):
    lines = sample_file(sample_root, relative).read_bytes().splitlines()
    lines[1] = lines[1].replace(b";", b"\xe6;", 1)  # a cp1252 'æ' in a UTF-8 file, on line 2
    wh.put(relative, b"\r\n".join(lines) + b"\r\n")
    out = _ingest_one(wh, relative)
    assert out.status == "quarantined", out.line()
    assert "line 2 has byte 0xE6" in out.reason, out.reason
    assert [i[0] for i in issues(wh, out.delivery_id)] == [2]


def test_stg_audit_delivery_and_its_tests_accept_unroutable_rows(wh, sample_root):
    """dbt's staging model of audit.delivery builds, and its data tests pass, with unroutable rows (nulls)
    beside a loaded delivery."""
    from trivsel.certify import _dbt

    wh.put(PAYROLL, sample_file(sample_root, PAYROLL).read_bytes())
    wh.put("999/hr_absence/2014-01/x.csv", b"x")
    wh.put("169/hr_absence/2014-3/y.csv", b"y")
    loading.record_unroutable(wh.conn, load_config().codes)
    assert [o.status for o in loading.ingest_municipality("169", PERIOD, "test")] == ["loaded"]
    assert wh.conn.execute("select count(*) from audit.delivery where status = 'unroutable'").fetchone()[0] == 2
    rc, out = _dbt(["build", "--select", "stg_audit__delivery"], wh.tmp / "dbt-target")
    assert rc == 0, out[-3000:]
    assert "ERROR=0" in out and "PASS not_null_stg_audit__delivery_municipality_code" in out, out[-3000:]
    assert wh.conn.execute("select count(*) from staging.stg_audit__delivery where status = 'unroutable'"
                           " and municipality_code is null").fetchone()[0] == 1
