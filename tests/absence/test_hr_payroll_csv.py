"""hr_payroll_csv: the employee-level monthly payroll extract, good and bad inputs."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from absence_helpers import KEY, write_csv

from trivsel.loading import _summarise
from trivsel.sources.base import DeliveryContext, FileRejected
from trivsel.sources.hr_payroll_csv import SCHEME, parse

HEADER = "Medarbejdernr;Enhed;Måned;Fraværskode;Fraværstekst;Fraværstimer;Normtimer;Årsværk"
GOOD = [
    HEADER,
    "004711;VV fløj A;2014-01;SYG;Egen sygdom;14,80;160,33;1,00",
    "004711;VV fløj A;2014-01;BARNSYG;Barn syg;7,40;160,33;1,00",
    "004712;Vestervænget fløj B;2014-01;;;0,00;129,87;0,81",
    "004713;VV nattevagt;2014-01;DELSYG;Delvis sygemeldt;30,00;160,33;1,00",
]


def run(tmp_path, make_ctx, lines, name="fravaer_2014-01.csv", encoding="cp1252", period="2014-01"):
    path = write_csv(tmp_path / name, lines, encoding)
    ctx = make_ctx("169", period, name)
    return list(parse(path, ctx)), ctx


def test_good_file(tmp_path, make_ctx):
    rows, ctx = run(tmp_path, make_ctx, GOOD)
    assert ctx.issues == []
    assert [t for t, _ in rows] == ["hr_payroll_absence"] * 4
    first = rows[0][1]
    assert len(first) == len(SCHEME.table("hr_payroll_absence").columns)
    assert first[0] == 2  # source_row: header is row 1
    assert first[2:] == ("VV fløj A", date(2014, 1, 1), "SYG", "Egen sygdom", Decimal("14.80"),
                         Decimal("160.33"), Decimal("1.00"))
    no_absence = rows[2][1]
    assert no_absence[4] is None and no_absence[6] == Decimal("0.00")


def test_employee_numbers_are_pseudonymised(tmp_path, make_ctx):
    rows, ctx = run(tmp_path, make_ctx, GOOD)
    flat = " ".join(str(v) for _, row in rows for v in row)
    for clear in ("004711", "4711", "004712", "004713"):
        assert clear not in flat
    expected = DeliveryContext("169", "2014-01", "x", pseudonym_key=KEY).pseudonymise("004711")
    assert rows[0][1][1] == expected and len(expected) == 64
    assert rows[0][1][1] == rows[1][1][1]  # stable per employee


def test_utf8_file_is_rejected_not_mojibaked(tmp_path, make_ctx):
    with pytest.raises(FileRejected) as err:
        run(tmp_path, make_ctx, GOOD, encoding="utf-8")
    assert "wrong encoding" in err.value.reason and "UTF-8" in err.value.reason
    assert err.value.row == 1


def test_utf8_bom_is_rejected(tmp_path, make_ctx):
    path = tmp_path / "fravaer_2014-01.csv"
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(GOOD).encode("cp1252"))
    with pytest.raises(FileRejected, match="byte-order mark"):
        list(parse(path, make_ctx("169", "2014-01", path.name)))


def test_missing_column_is_rejected(tmp_path, make_ctx):
    with pytest.raises(FileRejected, match="Årsværk"):
        run(tmp_path, make_ctx, [HEADER.rsplit(";", 1)[0], "004711;VV fløj A;2014-01;SYG;Egen sygdom;1;160"])


def test_unknown_absence_code(tmp_path, make_ctx):
    rows, ctx = run(tmp_path, make_ctx, GOOD + ["004714;VV fløj A;2014-01;FERIE;Ferie;7,40;160,33;1,00"])
    assert len(ctx.issues) == 1
    issue = ctx.issues[0]
    assert (issue.row, issue.column, issue.value) == (6, "Fraværskode", "FERIE")
    assert "unknown absence code 'FERIE'" in issue.reason
    # the loader's quarantine reason names file, row and column
    summary = _summarise(ctx.file_name, [(i.row, i.column, "parse", i.reason, i.value) for i in ctx.issues])
    assert summary.startswith("fravaer_2014-01.csv row 6 column Fraværskode: unknown absence code 'FERIE'")


def test_unknown_unit(tmp_path, make_ctx):
    rows, ctx = run(tmp_path, make_ctx, GOOD + ["004714;Køkkenet;2014-01;SYG;Egen sygdom;7,40;160,33;1,00"])
    assert [(i.row, i.column) for i in ctx.issues] == [(6, "Enhed")]
    assert "unknown unit 'Køkkenet'" in ctx.issues[0].reason


def test_negative_hours(tmp_path, make_ctx):
    rows, ctx = run(tmp_path, make_ctx, GOOD + ["004714;VV fløj A;2014-01;SYG;Egen sygdom;-7,40;160,33;1,00"])
    assert [(i.row, i.column) for i in ctx.issues] == [(6, "Fraværstimer")]
    assert "negative Fraværstimer" in ctx.issues[0].reason


def test_same_employee_month_twice(tmp_path, make_ctx):
    rows, ctx = run(tmp_path, make_ctx, GOOD + ["4711;VV fløj A;2014-01;SYG;Egen sygdom;7,40;160,33;1,00"])
    assert [(i.row, i.column) for i in ctx.issues] == [(6, "Medarbejdernr")]
    assert "as row 2" in ctx.issues[0].reason and "duplicate employee-month" in ctx.issues[0].reason
    assert "4711" not in ctx.issues[0].reason  # no clear employee number in quarantine either


def test_month_outside_period(tmp_path, make_ctx):
    rows, ctx = run(tmp_path, make_ctx, GOOD + ["004714;VV fløj A;2014-02;SYG;Egen sygdom;7,40;160,33;1,00"])
    assert [(i.row, i.column) for i in ctx.issues] == [(6, "Måned")]


def test_inconsistent_contractual_hours(tmp_path, make_ctx):
    rows, ctx = run(tmp_path, make_ctx, GOOD + ["004711;VV fløj A;2014-01;OEVRIG;Øvrigt;3,70;120,00;1,00"])
    assert [(i.row, i.column) for i in ctx.issues] == [(6, "Normtimer")]


def test_hours_without_code(tmp_path, make_ctx):
    rows, ctx = run(tmp_path, make_ctx, GOOD + ["004714;VV fløj A;2014-01;;;7,40;160,33;1,00"])
    assert [(i.row, i.column) for i in ctx.issues] == [(6, "Fraværskode")]
