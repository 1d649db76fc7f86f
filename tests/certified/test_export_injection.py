"""CSV/formula injection: a hostile delivery file name reaching certified.delivery_coverage stays inert text
in CSV (read with `,` and with `;`, as Danish Excel does) and in xlsx; numbers stay numbers."""

from __future__ import annotations

import csv
import io
import re
from datetime import date
from decimal import Decimal

import psycopg
import pytest
import throwaway_db

from trivsel import export

HOSTILE = "x;=cmd|' -C calc'!A0;.csv"
TEXTS = [HOSTILE, "=HYPERLINK(\"http://evil.example\")", "+1+2", "-2+3", "@SUM(A1)", "\t=1", "\r=1",
         "a, =1+1", "b,\t-3", 'c;"=2', "Høje-Taastrup", "1-2", "plain"]
COLS = ["municipality_code", "file_name", "change", "n", "share", "period_start"]
ROWS = [("169", t, Decimal("-2.99"), -4, -0.5, date(2013, 1, 1)) for t in TEXTS]
FORMULA = re.compile(r"^[=+\-@\t\r]")
NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def cells(text: str, sep: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=sep))


def assert_inert(text: str, sep: str) -> None:
    """Every cell the spreadsheet sees when splitting on `sep` is a number or does not start a formula. A
    negative number followed by the file's own separator (`-4;…` read on `,`) is arithmetic on a number at
    worst, never a call."""
    for row in cells(text, sep):
        for cell in row:
            seen = cell.lstrip(' \t\r\n"')  # Excel skips leading blanks and a stray quote
            if FORMULA.match(seen):
                assert NUMBER.match(seen) or re.match(r"^-\d", seen), (sep, cell)


@pytest.mark.parametrize("sep", [",", ";"])
def test_csv_is_inert_under_both_separators(tmp_path, sep):
    path = export.write_csv(tmp_path / "delivery_coverage.csv", COLS, ROWS, sep)
    text = path.read_bytes().decode("utf-8-sig")
    assert "=cmd" in text, "the value is kept, only neutralised"
    for read_sep in (",", ";"):
        assert_inert(text, read_sep)
    rows = cells(text, sep)
    assert rows[0] == COLS
    assert len(rows) == len(ROWS) + 1, "one line per row: CR inside a value is quoted"
    by_name = {r[1]: r for r in rows[1:]}
    # read with its own separator, the hostile name is one cell, neutralised at the inner separators too
    assert "x;'=cmd|' -C calc'!A0;.csv" in by_name
    assert by_name["x;'=cmd|' -C calc'!A0;.csv"][2:5] == ["-2.99", "-4", "-0.5"], "negative numbers stay numbers"
    assert "'=HYPERLINK(\"http://evil.example\")" in by_name and "'-2+3" in by_name and "Høje-Taastrup" in by_name
    # a text with either separator is quoted in the file
    assert f'{sep}"x;\'=cmd|\' -C calc\'!A0;.csv"{sep}' in text
    assert f'{sep}"a, \'=1+1"{sep}' in text
    assert f'{sep}"\'\r\'=1"{sep}' in text, "after a CR inside a value too"


def test_csv_field_keeps_numbers_bare_and_quotes_separators():
    assert export.csv_field(Decimal("-2.99")) == "-2.99"
    assert export.csv_field(-3) == "-3"
    assert export.csv_field(None) == ""
    assert export.csv_field("-3") == "'-3", "a text is text, even when it reads like a number"
    assert export.csv_field("a;b") == '"a;b"' and export.csv_field("a,b") == '"a,b"'
    assert export.csv_field('say "hi"') == '"say ""hi"""'


def test_xlsx_cells_are_text_and_numbers_numbers(tmp_path):
    from openpyxl import load_workbook

    path = export.write_xlsx(tmp_path / "t.xlsx", {"delivery_coverage": (COLS, ROWS)})
    ws = load_workbook(path)["delivery_coverage"]
    # row 1: the Danish labels, row 2: the column names, then the data (export_format)
    assert [c.value for c in ws[2]] == COLS
    rows = list(ws.iter_rows(min_row=3))
    for row in rows:
        name = row[1]
        assert name.data_type == "s", (name.value, name.data_type)
        assert not FORMULA.match(name.value), name.value
        assert row[2].data_type == "n" and row[2].value == pytest.approx(-2.99)
        assert row[3].value == -4 and row[4].value == -0.5
    assert {r[1].value for r in rows} >= {HOSTILE, "'=HYPERLINK(\"http://evil.example\")", "'\t=1", "'-2+3"}


@pytest.fixture(scope="module")
def certified_url(warehouse_url):
    """A throwaway warehouse whose certified.delivery_coverage holds the hostile file name."""
    url = throwaway_db.create(warehouse_url, "export_injection", rails=False)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("create schema certified")
        conn.execute("create table certified.delivery_coverage (municipality_code text, source text,"
                     " period text, file_name text, status text, files integer, change numeric)")
        conn.execute("insert into certified.delivery_coverage values"
                     " ('169', 'incidents', '2013-12', %s, 'quarantined', 1, -2.99),"
                     " ('461', 'hr_absence', '2013-12', 'ok.csv', 'delivered', 2, 0.5)", (HOSTILE,))
        conn.execute("create table certified.publication_log (publication_id integer, period text, run_id text,"
                     " certified_at timestamptz, small_cell_threshold integer)")
        conn.execute("insert into certified.publication_log values (1, '2013-12', '=run', now(), 5)")
        conn.execute("""do $$ begin if exists (select 1 from pg_roles where rolname = 'evaluator') then
                          grant usage on schema certified to evaluator;
                          grant select on all tables in schema certified to evaluator; end if; end $$""")
    yield url
    throwaway_db.drop(warehouse_url, "export_injection")


@pytest.mark.parametrize("sep", [",", ";"])
def test_export_of_a_hostile_file_name(certified_url, tmp_path, sep):
    from openpyxl import load_workbook

    export.export(tmp_path / "csv", fmt="csv", url=certified_url, sep=sep)
    text = (tmp_path / "csv" / "delivery_coverage.csv").read_bytes().decode("utf-8-sig")
    for read_sep in (",", ";"):
        assert_inert(text, read_sep)
    rows = {r[3]: r for r in cells(text, sep)[1:]}
    assert rows["x;'=cmd|' -C calc'!A0;.csv"][6] == "-2.99"
    assert cells((tmp_path / "csv" / "publication_log.csv").read_bytes().decode("utf-8-sig"), sep)[1][2] == "'=run"

    export.export(tmp_path / "x", fmt="xlsx", url=certified_url)
    ws = load_workbook(next((tmp_path / "x").glob("*.xlsx")))["delivery_coverage"]
    names = {r[3].value: r for r in ws.iter_rows(min_row=3)}  # under the label and name rows
    assert set(names) == {"x;=cmd|' -C calc'!A0;.csv", "ok.csv"}, "xlsx cells are not split: kept verbatim"
    assert names["ok.csv"][6].data_type == "n"
