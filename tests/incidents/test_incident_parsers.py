"""The incident and use-of-force parsers: good files load, bad rows are rejected with file, row and column."""

from __future__ import annotations

import datetime as dt

import pytest
from _incident_helpers import one_issue, parse, write

from trivsel.sources.base import FileRejected

HT, ODENSE, FR = "169", "461", "607"
REG_HEADER = "Sagsnr;Dato;Enhed;Hændelsestype;Skadetype;Fravær;Beskrivelse"
CHOK = "Chok, som følge af aggression og trusler"


def reg_row(case="AS-2013-0001", date="05-03-2013", unit="Vestervænget fløj A", event="Arbejdsulykke",
            injury=CHOK, absence="Uden fravær", text="Trusler"):
    return ";".join([case, date, unit, event, injury, absence, text])


# ------------------------------------------------------------------ ohs_registry_export


def test_registry_export_good_file(tmp_path, incident_ctx):
    path = write(tmp_path, "arbejdsskader_2013.csv", [
        REG_HEADER, reg_row(), reg_row("AS-2013-0002", event="Nærvedhændelse", absence="Med fravær", text=""),
        "", reg_row("AS-2013-0003", unit="Vestervænget nat", injury="Overfladiske skader")])
    ctx = incident_ctx(HT, "2013-12", path.name)
    rows = parse("ohs_registry_export", path, ctx)
    assert ctx.issues == []
    assert [t for t, _ in rows] == ["ohs_registration"] * 3
    first = rows[0][1]
    assert first == (2, "AS-2013-0001", dt.date(2013, 3, 5), "Vestervænget fløj A", "Arbejdsulykke", CHOK,
                     "Uden fravær", "Trusler")
    assert rows[1][1][-1] is None  # empty free text -> null
    assert rows[2][1][0] == 5  # the blank line keeps its number


def test_registry_export_unknown_label(tmp_path, incident_ctx):
    path = write(tmp_path, "arbejdsskader_2013.csv", [REG_HEADER, reg_row(), reg_row("AS-2013-0002",
                                                                                      injury="Knoglebrud")])
    ctx = incident_ctx(HT, "2013-12", path.name)
    rows = parse("ohs_registry_export", path, ctx)
    issue = one_issue(ctx)
    assert (issue.row, issue.column, issue.value) == (3, "Skadetype", "Knoglebrud")
    assert "unknown label" in issue.reason and path.name in issue.reason and "row 3" in issue.reason
    assert len(rows) == 1


def test_registry_export_date_outside_period(tmp_path, incident_ctx):
    path = write(tmp_path, "arbejdsskader_2013.csv", [REG_HEADER, reg_row(date="30-12-2012")])
    ctx = incident_ctx(HT, "2013-12", path.name)
    assert parse("ohs_registry_export", path, ctx) == []
    issue = one_issue(ctx)
    assert (issue.row, issue.column, issue.value) == (2, "Dato", "30-12-2012")
    assert "outside the period" in issue.reason and "2013" in issue.reason


def test_registry_export_duplicate_case_id(tmp_path, incident_ctx):
    path = write(tmp_path, "arbejdsskader_2013.csv", [REG_HEADER, reg_row(), reg_row(), reg_row("AS-2013-0009")])
    ctx = incident_ctx(HT, "2013-12", path.name)
    rows = parse("ohs_registry_export", path, ctx)
    issue = one_issue(ctx)
    assert (issue.row, issue.column, issue.value) == (3, "Sagsnr", "AS-2013-0001")
    assert "duplicate" in issue.reason and "row 2" in issue.reason
    assert len(rows) == 2


def test_registry_export_unknown_unit_and_bad_date(tmp_path, incident_ctx):
    path = write(tmp_path, "arbejdsskader_2013.csv", [REG_HEADER, reg_row(unit="Vestervænget fløj Q",
                                                                           date="2013-13-01")])
    ctx = incident_ctx(HT, "2013-12", path.name)
    assert parse("ohs_registry_export", path, ctx) == []
    assert {(i.row, i.column) for i in ctx.issues} == {(2, "Enhed"), (2, "Dato")}


def test_registry_export_file_problems(tmp_path, incident_ctx):
    missing = write(tmp_path, "arbejdsskader_2013.csv", ["Sagsnr;Dato;Enhed", "AS-1;01-01-2013;X"])
    with pytest.raises(FileRejected, match="missing column"):
        parse("ohs_registry_export", missing, incident_ctx(HT, "2013-12", missing.name))
    latin1 = write(tmp_path, "arbejdsskader_x.csv", [REG_HEADER, reg_row()], encoding="latin-1")
    with pytest.raises(FileRejected, match="not UTF-8"):
        parse("ohs_registry_export", latin1, incident_ctx(HT, "2013-12", latin1.name))
    good = write(tmp_path, "arbejdsskader_y.csv", [REG_HEADER, reg_row()])
    with pytest.raises(FileRejected, match="YYYY-12"):
        parse("ohs_registry_export", good, incident_ctx(HT, "2013-06", good.name))
    ragged = write(tmp_path, "arbejdsskader_z.csv", [REG_HEADER, "AS-1;01-01-2013"])
    ctx = incident_ctx(HT, "2013-12", ragged.name)
    assert parse("ohs_registry_export", ragged, ctx) == []
    assert one_issue(ctx).row == 2


# ------------------------------------------------------------------ ohs_case_review

REVIEW_HEADER = "Sagsnr;Dato;Også vold;Udeladt;Begrundelse"


def test_case_review_good_and_bad(tmp_path, incident_ctx):
    good = write(tmp_path, "sagsgennemgang_2013.csv", [
        REVIEW_HEADER, "AS-2013-0003;30-03-2013;Ja;Ja;Borger uden for projektet", "AS-2013-0004;05-04-2013;Nej;Nej;"])
    ctx = incident_ctx(HT, "2013-12", good.name)
    rows = parse("ohs_case_review", good, ctx)
    assert ctx.issues == []
    assert rows[0][1] == (2, "AS-2013-0003", dt.date(2013, 3, 30), "Ja", True, "Ja", True,
                          "Borger uden for projektet")
    assert rows[1][1][-1] is None

    bad = write(tmp_path, "sagsgennemgang_bad.csv", [
        REVIEW_HEADER, "AS-1;30-03-2013;Ja;Ja;", "AS-2;30-03-2013;Måske;Nej;", "AS-2;01-01-2014;Nej;Nej;"])
    ctx = incident_ctx(HT, "2013-12", bad.name)
    assert parse("ohs_case_review", bad, ctx) == []
    assert {(i.row, i.column) for i in ctx.issues} == {
        (2, "Begrundelse"), (3, "Også vold"), (4, "Sagsnr"), (4, "Dato")}


# ------------------------------------------------------------------ Fredericia's two registers

def test_reported_accidents_by_unit(tmp_path, incident_ctx):
    good = write(tmp_path, "anmeldte_2012.csv", [
        "Sted;År;Skadevirkning;Antal", "Socialpsykiatrien;2012;Psykisk;0", "Bostøtten og ungeteam;2012;Psykisk;2",
        "Nestlegården;2012;Psykisk;2"])
    ctx = incident_ctx(FR, "2012-12", good.name)
    rows = parse("reported_accidents_by_unit", good, ctx)
    assert ctx.issues == []
    assert [r[1] for r in rows] == [(2, "Socialpsykiatrien", 2012, "Psykisk", 0),
                                    (3, "Bostøtten og ungeteam", 2012, "Psykisk", 2),
                                    (4, "Nestlegården", 2012, "Psykisk", 2)]
    bad = write(tmp_path, "anmeldte_bad.csv", [
        "Sted;År;Skadevirkning;Antal", "Hjemmeplejen;2012;Psykisk;1", "Stoppestedet;2011;Psykisk;1",
        "Stoppestedet;2012;Fysisk;1", "Ny vej;2012;Psykisk;-1", "Ny vej;2012;Psykisk;1", "Ny vej;2012;Psykisk;2"])
    ctx = incident_ctx(FR, "2012-12", bad.name)
    parse("reported_accidents_by_unit", bad, ctx)
    assert {(i.row, i.column) for i in ctx.issues} == {
        (2, "Sted"), (3, "År"), (4, "Skadevirkning"), (5, "Antal"), (7, "Sted")}
    assert "unknown unit" in ctx.issues[0].reason
    assert "year outside the period" in ctx.issues[1].reason


def test_internal_incident_register(tmp_path, incident_ctx):
    header = "Løbenr;Dato;Sted;Type;Undertype;Beskrivelse"
    good = write(tmp_path, "interne_2013.csv", [
        header, "2013-001;31-01-2013;Bostøtten;Trussel;krænkende adfærd;", "2013-002;23-09-2013;Bostøtten;Vold;"
        "slag + ukvemsord;slag og ukvemsord", "2013-003;26-10-2013;Socialpsykiatrien;Trussel;andet;"])
    ctx = incident_ctx(FR, "2013-12", good.name)
    rows = parse("internal_incident_register", good, ctx)
    assert ctx.issues == []
    assert rows[1][1] == (3, "2013-002", dt.date(2013, 9, 23), "Bostøtten", "Vold", "slag + ukvemsord",
                          "slag og ukvemsord")
    bad = write(tmp_path, "interne_bad.csv", [
        header, "1;31-01-2013;Bostøtten;Trussel;spyt;", "1;01-02-2013;Bostøtten;Trussel;chok;",
        "2;01-02-2012;Bostøtten;Trussel;chok;", "3;01-02-2013;Bostøtten;Chikane;chok;"])
    ctx = incident_ctx(FR, "2013-12", bad.name)
    assert parse("internal_incident_register", bad, ctx) == []
    assert {(i.row, i.column) for i in ctx.issues} == {
        (2, "Undertype"), (3, "Løbenr"), (4, "Dato"), (5, "Type")}


# ------------------------------------------------------------------ Odense and use of force

def test_incident_yearly_aggregate(tmp_path, incident_ctx):
    header = "År;Type;Antal;Bemærkning"
    good = write(tmp_path, "trusler_vold_2011.csv", [header, "2011;Trusler;0;", "2011;Vold;1;knytnæve i ansigtet"])
    ctx = incident_ctx(ODENSE, "2011-12", good.name)
    assert [r[1] for r in parse("incident_yearly_aggregate", good, ctx)] == [
        (2, 2011, "Trusler", 0, None), (3, 2011, "Vold", 1, "knytnæve i ansigtet")]
    assert ctx.issues == []
    bad = write(tmp_path, "trusler_vold_bad.csv", [header, "2011;Chikane;0;", "2012;Vold;1;", "2011;Vold;x;",
                                                     "2011;Trusler;0;", "2011;Trusler;0;"])
    ctx = incident_ctx(ODENSE, "2011-12", bad.name)
    parse("incident_yearly_aggregate", bad, ctx)
    assert {(i.row, i.column) for i in ctx.issues} == {(2, "Type"), (3, "År"), (4, "Antal"), (6, "Type")}


def test_use_of_force_yearly(tmp_path, incident_ctx):
    header = "År;Antal magtanvendelser;Heraf borger uden for projektet;Bemærkning"
    good = write(tmp_path, "magtanvendelser_2013.csv", [header, "2013;4;3;Tre vedrører samme borger"])
    ctx = incident_ctx(HT, "2013-12", good.name)
    assert parse("use_of_force_yearly", good, ctx) == [("use_of_force_count",
                                                         (2, 2013, 4, 3, "Tre vedrører samme borger"))]
    zero = write(tmp_path, "magtanvendelser_2010.csv", [header, "2010;0;;"])
    ctx = incident_ctx(ODENSE, "2010-12", zero.name)
    assert parse("use_of_force_yearly", zero, ctx) == [("use_of_force_count", (2, 2010, 0, None, None))]
    bad = write(tmp_path, "magtanvendelser_bad.csv", [header, "2013;1;3;x", "2012;1;;", "2013;2;1;",
                                                        "2013;;;"])
    ctx = incident_ctx(HT, "2013-12", bad.name)
    assert parse("use_of_force_yearly", bad, ctx) == []
    assert {(i.row, i.column) for i in ctx.issues} == {
        (2, "Heraf borger uden for projektet"), (3, "År"), (4, "Bemærkning"), (5, "Antal magtanvendelser")}
