"""Workbooks through the loader (issue 12 section 4): visible sheets only, merged cells filled as documented
or the file quarantined, a formula without a cached value named as such, and rows read = rows in raw + rows
quarantined. Each test has a database of its own (`wh`)."""

from __future__ import annotations

import io
from decimal import Decimal

from openpyxl import Workbook

from trivsel import loading

UNITS = ("Socialpsykiatri", "Bostøtte", "Ungeteamet")  # 607's units as the new HR system names them
PERIOD = "2013-12"
FILE = f"607/hr_absence/{PERIOD}/sygefravaer_2013.xlsx"


def figure(unit: int, month: int) -> float:
    return round(2 + unit + month / 10, 2)


def month_workbook(*, merge_units: bool = False, hidden_year_sheet: bool = False, hide_months: bool = False,
                   formula_cell: str | None = None, merge: str | None = None) -> bytes:
    """A new-layout workbook: sheet 'Månedsoversigt', 3 units x 12 months of 2013, figures figure(u, m)."""
    wb = Workbook()
    wb.active.title = "Rapportinfo"
    wb.active.append(["Fraværsrapport", "Sygefravær 2013"])
    if hidden_year_sheet:  # an old-layout sheet nobody sees, with other figures
        old = wb.create_sheet("År")
        old.append(["Afdeling", 2012, 2013])
        old.append(["Socialpsykiatri", 55.5, 66.6])
        old.sheet_state = "hidden"
    ws = wb.create_sheet("Månedsoversigt")
    ws.append(["Sygefravær i pct. af hele medarbejdergruppen pr. måned"])
    ws.merge_cells("A1:D1")  # a title above the header: allowed
    ws.append(["Organisation", "År", "Måned", "Sygefravær pct."])
    for u, unit in enumerate(UNITS):
        first = ws.max_row + 1
        for month in range(1, 13):
            ws.append([unit if (month == 1 or not merge_units) else None, 2013, month, figure(u, month)])
        if merge_units:
            ws.merge_cells(f"A{first}:A{first + 11}")
    if formula_cell:
        ws[formula_cell] = "=D3+D4"  # openpyxl writes formulas without a cached value
    if merge:
        ws.merge_cells(merge)
    if hide_months:
        ws.sheet_state = "hidden"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def ingest(wh):
    [out] = loading.ingest_municipality("607", PERIOD, "test")
    return out


def raw(wh, delivery_id):
    return wh.conn.execute("select sheet_name, unit_text, year, month, value_numeric from raw.hr_unit_workbook_value"
                           " where delivery_id = %s order by source_row", (delivery_id,)).fetchall()


def issues(wh, delivery_id):
    return wh.conn.execute("select row_number, column_name, check_name, reason from quarantine.delivery_issue"
                           " where delivery_id = %s order by row_number nulls first", (delivery_id,)).fetchall()


def expected_rows():
    return [("Månedsoversigt", unit, 2013, m, Decimal(str(figure(u, m))).quantize(Decimal("0.01")))
            for u, unit in enumerate(UNITS) for m in range(1, 13)]


def test_unit_name_merged_over_month_rows_fills_every_row(wh):
    wh.put(FILE, month_workbook(merge_units=True))
    out = ingest(wh)
    assert out.status == "loaded", out.line()
    got = raw(wh, out.delivery_id)
    assert len(got) == out.rows == 36  # every row of every merge, none dropped
    assert got == expected_rows()


def test_merge_outside_the_unit_column_is_quarantined(wh):
    wh.put(FILE, month_workbook(merge="D3:D4"))  # one figure over two months: which month is it?
    out = ingest(wh)
    assert out.status == "quarantined"
    assert "merged cells D3:D4" in out.reason and "sygefravaer_2013.xlsx" in out.reason


def test_hidden_sheet_is_never_read_instead_of_the_visible_one(wh):
    wh.put(FILE, month_workbook(hidden_year_sheet=True))
    out = ingest(wh)
    assert out.status == "loaded", out.line()
    got = raw(wh, out.delivery_id)
    assert {r[0] for r in got} == {"Månedsoversigt"}
    assert got == expected_rows()  # the hidden sheet's 55.5 / 66.6 reached nothing


def test_a_workbook_whose_sheet_is_hidden_is_quarantined(wh):
    wh.put(FILE, month_workbook(hide_months=True))
    out = ingest(wh)
    assert out.status == "quarantined"
    assert "unrecognised workbook layout" in out.reason and "hidden (never read): Månedsoversigt" in out.reason


def test_formula_without_a_cached_value_is_named_not_empty(wh):
    wh.put(FILE, month_workbook(formula_cell="D7"))
    out = ingest(wh)
    assert out.status == "quarantined"
    found = issues(wh, out.delivery_id)
    assert [(r[0], r[1]) for r in found] == [(7, "Månedsoversigt!D")]
    assert "formula without a cached value in cell D7" in found[0][3]
    assert "empty cell" not in out.reason


def test_rows_read_equal_rows_in_raw_plus_rows_quarantined(wh, monkeypatch):
    """The loader checks the accounting for every scheme that declares it: a parser that reads a row and
    drops it without a reason (the merged-cell bug) quarantines the file instead of loading 35 of 36."""
    from trivsel.sources import hr_unit_workbook

    real = hr_unit_workbook.parse

    def drops_one(path, ctx):
        for k, item in enumerate(real(path, ctx)):
            if k != 5:
                yield item

    monkeypatch.setattr(hr_unit_workbook, "parse", drops_one)
    wh.put(FILE, month_workbook())
    out = ingest(wh)
    assert out.status == "quarantined"
    [issue] = issues(wh, out.delivery_id)
    assert issue[0] == 8 and issue[2] == "parser_error"
    assert "Månedsoversigt row 8 was read but neither loaded nor rejected" in issue[3]


def test_a_row_with_figures_but_no_unit_is_rejected_not_skipped(wh):
    wb_bytes = month_workbook()
    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(wb_bytes))
    wb["Månedsoversigt"]["A9"] = None  # no merge: an empty unit cell in a row with figures
    buf = io.BytesIO()
    wb.save(buf)
    wh.put(FILE, buf.getvalue())
    out = ingest(wh)
    assert out.status == "quarantined"
    assert [(r[0], r[1]) for r in issues(wh, out.delivery_id)] == [(9, "Månedsoversigt!A")]


# ------------------------------------------------------------------ the survey workbook


SURVEY = "461/survey/2013-05/trivselsmaaling_461_2013-05.xlsx"


def _survey(wh, sample_root, mutate) -> loading.Outcome:
    from openpyxl import load_workbook
    from rel_helpers import sample_file

    wb = load_workbook(sample_file(sample_root, SURVEY))
    mutate(wb)
    buf = io.BytesIO()
    wb.save(buf)
    wh.put(SURVEY, buf.getvalue())
    [out] = loading.ingest_municipality("461", "2013-05", "test")
    return out


def test_survey_unit_merged_over_respondents_fills_every_row(wh, sample_root):
    def merge_units(wb):
        ws = wb["Besvarelser"]
        ws["B3"] = ws["B4"] = None
        ws.merge_cells("B2:B4")  # respondents 1-3 share 'Botilbuddet Fangelvej'
    out = _survey(wh, sample_root, merge_units)
    assert out.status == "loaded", out.line()
    units = wh.conn.execute("select source_row, min(unit_name) from raw.survey_answer_xlsx where delivery_id = %s"
                            " and source_row <= 4 group by source_row order by 1", (out.delivery_id,)).fetchall()
    assert units == [(2, "Botilbuddet Fangelvej"), (3, "Botilbuddet Fangelvej"), (4, "Botilbuddet Fangelvej")]


def test_survey_answer_formula_without_value_is_not_a_blank_answer(wh, sample_root):
    def formula(wb):
        wb["Besvarelser"]["E5"] = "=D5"
    out = _survey(wh, sample_root, formula)
    assert out.status == "quarantined"
    assert "formula without a cached value in cell E5" in out.reason


def test_survey_hidden_population_sheet_is_never_read(wh, sample_root):
    def hide(wb):
        wb["Målgruppe"].sheet_state = "hidden"
    out = _survey(wh, sample_root, hide)
    assert out.status == "quarantined"
    assert "no visible sheet 'Målgruppe'" in out.reason
