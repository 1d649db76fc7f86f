"""hr_unit_workbook: Fredericia's HR statistics workbook in both layouts, good and bad inputs."""

from __future__ import annotations

from decimal import Decimal

import pytest
from openpyxl import Workbook

from trivsel.sources.base import FileRejected
from trivsel.sources.hr_unit_workbook import NEW, OLD, SCHEME, parse

OLD_ROWS = [
    ("Socialpsykiatri", "7,00/(10,24)", 6.48, 5.14),
    ("Bostøtten", 5.84, 3.96, 9.57),
    ("Ungeteam", "Ej oplyst", "Ej oplyst", "(19,78)"),
    ("Stoppestedet", 7.72, 8.45, 7.42),
    ("Nestlegården", "-", "(2,56)", 5.5),
]


def old_workbook(path, rows=OLD_ROWS, months=None):
    wb = Workbook()
    ws = wb.active
    ws.title = "År"
    ws.append(["Sygefravær i % af hele medarbejdergruppen"])
    ws.append([])
    ws.append(["Afdeling", 2010, 2011, 2012])
    for row in rows:
        ws.append(list(row))
    ws.append(["Gn.snit", 6.85, 6.30, "(9,48)/6,91"])  # totals are recomputed, never read
    if months:
        ms = wb.create_sheet("Måned")
        ms.append(["Afdeling", "Måned", "Sygefravær %"])
        for row in months:
            ms.append(list(row))
    wb.save(path)
    return path


def new_workbook(path, year_rows=(), month_rows=()):
    wb = Workbook()
    wb.active.title = "Rapportinfo"
    if year_rows:
        ws = wb.create_sheet("Årsoversigt")
        ws.append(["Sygefravær i pct."])
        ws.append(["Organisation", "År", "Sygefravær pct."])
        for row in year_rows:
            ws.append(list(row))
    if month_rows:
        ws = wb.create_sheet("Månedsoversigt")
        ws.append(["Organisation", "År", "Måned", "Sygefravær pct."])
        for row in month_rows:
            ws.append(list(row))
    wb.save(path)
    return path


def parse_all(path, make_ctx, period):
    ctx = make_ctx("607", period, path.name)
    return [row for _, row in parse(path, ctx)], ctx


def test_old_layout_table_7_9(tmp_path, make_ctx):
    rows, ctx = parse_all(old_workbook(tmp_path / "s.xlsx"), make_ctx, "2012-12")
    assert ctx.issues == []
    assert len(rows) == 15  # 5 units x 3 years, the 'Gn.snit' row skipped
    assert all(len(r) == len(SCHEME.table("hr_unit_workbook_value").columns) for r in rows)
    assert {r[3] for r in rows} == {OLD}
    by = {(r[4], r[5]): r for r in rows}
    two = by[("Socialpsykiatri", 2010)]
    assert two[1:3] == ("År", "B4") and two[6] is None
    assert two[7:] == ("7,00/(10,24)", None, Decimal("7.00"), False, Decimal("10.24"), True)
    assert by[("Ungeteam", 2010)][7:10] == ("Ej oplyst", "Ej oplyst", None)
    assert by[("Ungeteam", 2012)][7:10] == ("(19,78)", None, Decimal("19.78"))
    assert by[("Ungeteam", 2012)][10] is True
    assert by[("Nestlegården", 2010)][7:9] == ("-", "-")
    assert by[("Nestlegården", 2012)][7] == "5,50"
    assert by[("Bostøtten", 2011)][9] == Decimal("3.96")


def test_old_layout_month_sheet(tmp_path, make_ctx):
    path = old_workbook(tmp_path / "s.xlsx", months=[("Bostøtten", "2012-11", 4.2), ("Bostøtten", "2012-12", 5)])
    rows, ctx = parse_all(path, make_ctx, "2012-12")
    assert ctx.issues == []
    months = [r for r in rows if r[6] is not None]
    assert [(r[5], r[6], r[9]) for r in months] == [(2012, 11, Decimal("4.20")), (2012, 12, Decimal("5"))]


def test_new_layout_detected(tmp_path, make_ctx):
    path = new_workbook(tmp_path / "s.xlsx", year_rows=[("Socialpsykiatri", 2013, 5.66), ("Ungeteamet", 2013, "Ej oplyst")],
                        month_rows=[("Bostøtte", 2013, 12, 6.1)])
    rows, ctx = parse_all(path, make_ctx, "2013-12")
    assert ctx.issues == []
    assert {r[3] for r in rows} == {NEW}
    assert [(r[1], r[4], r[5], r[6], r[9]) for r in rows] == [
        ("Årsoversigt", "Socialpsykiatri", 2013, None, Decimal("5.66")),
        ("Årsoversigt", "Ungeteamet", 2013, None, None),
        ("Månedsoversigt", "Bostøtte", 2013, 12, Decimal("6.10")),
    ]


def test_unrecognised_layout(tmp_path, make_ctx):
    wb = Workbook()
    wb.active.title = "Ark1"
    wb.save(tmp_path / "s.xlsx")
    with pytest.raises(FileRejected, match="unrecognised workbook layout.*Ark1"):
        parse_all(tmp_path / "s.xlsx", make_ctx, "2013-12")


def test_wrong_encoding_csv_renamed_xlsx(tmp_path, make_ctx):
    path = tmp_path / "sygefravaer.xlsx"
    path.write_bytes("Afdeling;2010\r\nBostøtten;5,84\r\n".encode())
    with pytest.raises(FileRejected, match="not an .xlsx workbook"):
        parse_all(path, make_ctx, "2013-12")


def test_unknown_unit(tmp_path, make_ctx):
    path = old_workbook(tmp_path / "s.xlsx", rows=[*OLD_ROWS, ("Værestedet", 1.0, 2.0, 3.0)])
    rows, ctx = parse_all(path, make_ctx, "2012-12")
    assert {(i.row, i.column) for i in ctx.issues} == {(9, "År!A")}
    assert "unknown unit 'Værestedet'" in ctx.issues[0].reason
    assert "sheet 'År' cell A9" in ctx.issues[0].reason


def test_negative_and_unreadable_values(tmp_path, make_ctx):
    path = new_workbook(tmp_path / "s.xlsx", month_rows=[("Bostøtte", 2014, 1, -2.5), ("Stoppestedet", 2014, 1, "n/a")])
    rows, ctx = parse_all(path, make_ctx, "2014-01")
    assert [(i.row, i.column) for i in ctx.issues] == [(2, "Månedsoversigt!D"), (3, "Månedsoversigt!D")]
    assert "negative" in ctx.issues[0].reason and "cell D2" in ctx.issues[0].reason
    assert rows == []


def test_same_unit_month_twice(tmp_path, make_ctx):
    path = new_workbook(tmp_path / "s.xlsx", month_rows=[("Bostøtte", 2014, 1, 2.5), ("Bostøtten", 2014, 1, 2.7)])
    rows, ctx = parse_all(path, make_ctx, "2014-01")
    assert [(i.row, i.column) for i in ctx.issues] == [(3, "Månedsoversigt!D")]
    assert "already given in sheet 'Månedsoversigt' cell D2" in ctx.issues[0].reason
    assert len(rows) == 1


def test_month_after_period(tmp_path, make_ctx):
    path = new_workbook(tmp_path / "s.xlsx", month_rows=[("Bostøtte", 2014, 2, 2.5)])
    rows, ctx = parse_all(path, make_ctx, "2014-01")
    assert len(ctx.issues) == 1 and "outside the delivery's period" in ctx.issues[0].reason
