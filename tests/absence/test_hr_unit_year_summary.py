"""hr_unit_year_summary: the historical unit-year summary, good and bad inputs."""

from __future__ import annotations

from decimal import Decimal

import pytest
from absence_helpers import write_csv

from trivsel.sources.base import FileRejected
from trivsel.sources.hr_unit_year_summary import SCHEME, parse

HEADER = "Enhed;År;Nøgletal;Værdi;Årsværk"
GOOD = [
    HEADER,
    "Vestervænget fløj A;2010;Sygefravær % af hele medarbejdergruppen;9,64;22,30",
    "Vestervænget fløj A;2010;Sygefravær % pr. medarbejder;0,43;22,30",
    "Vestervænget fløj A;2010;Sygedage pr. medarbejder;23,1;22,30",
    "Vestervænget nat;2011;Sygedage pr. medarbejder;Ej oplyst;",
]


def run(tmp_path, make_ctx, lines, encoding="cp1252"):
    name = "sygefravaer_aar_2010-2013.csv"
    path = write_csv(tmp_path / name, lines, encoding)
    ctx = make_ctx("169", "2013-12", name)
    return list(parse(path, ctx)), ctx


def test_good_file(tmp_path, make_ctx):
    rows, ctx = run(tmp_path, make_ctx, GOOD)
    assert ctx.issues == []
    assert len(rows) == 4
    row = rows[0][1]
    assert len(row) == len(SCHEME.table("hr_unit_year_summary").columns)
    assert row == (2, "Vestervænget fløj A", 2010, "Sygefravær % af hele medarbejdergruppen", "9,64", None,
                   Decimal("9.64"), False, None, None, Decimal("22.30"))
    marker = rows[3][1]
    assert marker[4:7] == ("Ej oplyst", "Ej oplyst", None) and marker[-1] is None


def test_wrong_encoding(tmp_path, make_ctx):
    with pytest.raises(FileRejected, match="wrong encoding.*UTF-8"):
        run(tmp_path, make_ctx, GOOD, encoding="utf-8")


def test_unknown_unit(tmp_path, make_ctx):
    rows, ctx = run(tmp_path, make_ctx, GOOD + ["Vestervænget fløj C;2010;Sygedage pr. medarbejder;1,0;3"])
    assert [(i.row, i.column) for i in ctx.issues] == [(6, "Enhed")]
    assert "unknown unit 'Vestervænget fløj C'" in ctx.issues[0].reason


def test_unknown_metric(tmp_path, make_ctx):
    rows, ctx = run(tmp_path, make_ctx, GOOD + ["Vestervænget nat;2010;Fraværsdage;1,0;3"])
    assert [(i.row, i.column) for i in ctx.issues] == [(6, "Nøgletal")]


def test_negative_value(tmp_path, make_ctx):
    rows, ctx = run(tmp_path, make_ctx, GOOD + ["Vestervænget nat;2010;Sygedage pr. medarbejder;-3,5;5"])
    assert [(i.row, i.column) for i in ctx.issues] == [(6, "Værdi")]
    assert "negative" in ctx.issues[0].reason


def test_same_unit_year_metric_twice(tmp_path, make_ctx):
    rows, ctx = run(tmp_path, make_ctx, GOOD + ["Vestervænget fløj A;2010;Sygedage pr. medarbejder;22;22,30"])
    assert [(i.row, i.column) for i in ctx.issues] == [(6, "Enhed")]
    assert "already delivered in row 4" in ctx.issues[0].reason


def test_year_after_period(tmp_path, make_ctx):
    rows, ctx = run(tmp_path, make_ctx, GOOD + ["Vestervænget nat;2014;Sygedage pr. medarbejder;3,5;5"])
    assert [(i.row, i.column) for i in ctx.issues] == [(6, "År")]
