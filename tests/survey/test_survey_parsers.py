"""Parsers of the survey schemes: survey_respondent_csv, survey_population_csv, survey_workbook_xlsx."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from _survey_helpers import context, seed
from openpyxl import Workbook

from trivsel.sources import get_scheme
from trivsel.sources.base import FileRejected

ITEMS = [r["item_code"] for r in seed("survey_items.csv")]
TEXTS = {r["item_code"]: r["text_da"] for r in seed("survey_items.csv")}
SCALES = {r["item_code"]: r["scale"] for r in seed("survey_items.csv")}
FIRST_LABEL = {}
for r in seed("survey_scale_labels.csv"):
    FIRST_LABEL.setdefault(r["scale"], r["label_da"])


def parse(scheme: str, path: Path, code: str = "607", period: str = "2012-05"):
    ctx = context(code, period, path.name)
    rows = list(get_scheme(scheme).parse(path, ctx))
    return rows, ctx.issues


def write_csv(path: Path, lines: list[list[str]], *, bom: bool = True, encoding: str = "utf-8") -> Path:
    text = "\n".join(";".join(line) for line in lines) + "\n"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode(encoding))
    return path


def answers_csv(tmp_path: Path, overrides: dict[str, str] | None = None, *, bom: bool = True,
                header: list[str] | None = None, unit: str = "Ungeteam", wave: str = "2012-05",
                encoding: str = "utf-8") -> Path:
    values = {code: FIRST_LABEL[SCALES[code]] for code in ITEMS}
    values.update(overrides or {})
    head = header or ["respondent", "enhed", "maaling", *ITEMS]
    rows = [head, ["17", unit, wave, *[values[c] for c in ITEMS]],
            ["18", "Ny vej", wave, *["" for _ in ITEMS]]]
    return write_csv(tmp_path / "besvarelser_607_2012-05.csv", rows, bom=bom, encoding=encoding)


# --- survey_respondent_csv ---------------------------------------------------------------------------


def long_rows(rows):
    """The parser's wide rows in the long shape staging unnests them to: (line, respondent, unit, wave, item,
    label)."""
    return [(line, respondent, unit, wave, item, label)
            for _, (line, respondent, unit, wave, answers) in rows
            for item, label in json.loads(answers).items()]


def test_sample_file_parses_without_issues(survey_inbox):
    path = survey_inbox / "607/survey/2012-05/besvarelser_607_2012-05.csv"
    rows, issues = parse("survey_respondent_csv", path)
    assert not issues
    assert len(rows) == 31  # one raw row per respondent, as delivered
    assert len(long_rows(rows)) == 31 * len(ITEMS)
    assert {table for table, _ in rows} == {"survey_response_csv"}
    table = get_scheme("survey_respondent_csv").scheme.table("survey_response_csv")
    assert all(len(row) == len(table.columns) for _, row in rows)


def test_good_file_wide_as_delivered_with_bom(tmp_path):
    rows, issues = parse("survey_respondent_csv", answers_csv(tmp_path))
    assert not issues
    assert [row[:4] for _, row in rows] == [(2, "17", "Ungeteam", "2012-05"), (3, "18", "Ny vej", "2012-05")]
    first = json.loads(rows[0][1][4])
    assert list(first) == ITEMS  # every item column, in the file's order
    assert first[ITEMS[0]] == FIRST_LABEL[SCALES[ITEMS[0]]]
    blank = json.loads(rows[1][1][4])
    assert list(blank) == ITEMS and set(blank.values()) == {None}  # blanks are kept as non-answers


def test_without_bom_also_accepted(tmp_path):
    rows, issues = parse("survey_respondent_csv", answers_csv(tmp_path, bom=False))
    assert not issues and rows


def test_ved_ikke_is_kept_as_delivered(tmp_path):
    rows, issues = parse("survey_respondent_csv", answers_csv(tmp_path, {"2.4.1": "Ved ikke"}))
    assert not issues
    assert [row[5] for row in long_rows(rows) if row[1] == "17" and row[4] == "2.4.1"] == ["Ved ikke"]


def test_unknown_label_is_rejected_with_row_and_column(tmp_path):
    rows, issues = parse("survey_respondent_csv", answers_csv(tmp_path, {"3.1.1": "I nogen grad"}))
    assert [(i.row, i.column, i.value) for i in issues] == [(2, "3.1.1", "I nogen grad")]
    assert "unknown answer label" in issues[0].reason
    assert [row[1] for _, row in rows] == ["18"]  # the rejected respondent's row is not yielded


def test_label_of_another_scale_is_rejected(tmp_path):
    _, issues = parse("survey_respondent_csv", answers_csv(tmp_path, {"2.4.1": "Meget tilfreds"}))
    assert [(i.row, i.column) for i in issues] == [(2, "2.4.1")]


def test_missing_column_rejects_the_file(tmp_path):
    header = ["respondent", "enhed", "maaling", *ITEMS[:-1], "x"]
    with pytest.raises(FileRejected, match=f"missing columns: {ITEMS[-1]}"):
        parse("survey_respondent_csv", answers_csv(tmp_path, header=header))


def test_unknown_item_column_rejects_the_file(tmp_path):
    header = ["respondent", "enhed", "maaling", *ITEMS]
    path = write_csv(tmp_path / "a.csv", [header + ["9.9.9"]])
    with pytest.raises(FileRejected, match="unknown columns"):
        parse("survey_respondent_csv", path)


def test_wrong_encoding_rejects_the_file(tmp_path):
    path = answers_csv(tmp_path, {"2.4.1": "I høj grad"}, bom=False, encoding="cp1252")
    with pytest.raises(FileRejected, match="not UTF-8"):
        parse("survey_respondent_csv", path)


def test_unknown_unit_and_wrong_wave_are_rejected(tmp_path):
    _, issues = parse("survey_respondent_csv", answers_csv(tmp_path, unit="Vestervænget nat"))
    assert [(i.row, i.column) for i in issues] == [(2, "enhed")]
    _, issues = parse("survey_respondent_csv", answers_csv(tmp_path, wave="2013-05"))
    assert [(i.row, i.column) for i in issues] == [(2, "maaling"), (3, "maaling")]


def test_repeated_respondent_is_rejected(tmp_path):
    path = answers_csv(tmp_path)
    text = path.read_text(encoding="utf-8-sig").replace("\n18;", "\n17;")
    path.write_text(text, encoding="utf-8-sig")
    _, issues = parse("survey_respondent_csv", path)
    assert [(i.row, i.column) for i in issues] == [(3, "respondent")]


# --- survey_population_csv ---------------------------------------------------------------------------


def test_population_csv(tmp_path, survey_inbox):
    rows, issues = parse("survey_population_csv", survey_inbox / "607/survey/2012-05/maalgruppe_607_2012-05.csv")
    assert not issues
    assert sum(row[3] for _, row in rows) == 42
    bad = write_csv(tmp_path / "maalgruppe.csv", [["enhed", "maaling", "maalgruppe"], ["Ny vej", "2012-05", "fem"]])
    _, issues = parse("survey_population_csv", bad)
    assert [(i.row, i.column, i.value) for i in issues] == [(2, "maalgruppe", "fem")]
    with pytest.raises(FileRejected, match="maalgruppe"):
        parse("survey_population_csv", write_csv(tmp_path / "m2.csv", [["enhed", "maaling"]]))


# --- survey_workbook_xlsx ----------------------------------------------------------------------------


def workbook(path: Path, *, headers: list[str] | None = None, answer: object = 2, population: bool = True,
             wave: object = dt.datetime(2012, 5, 1)) -> Path:
    wb = Workbook()
    ws = wb.active
    ws.title = "Besvarelser"
    ws.append(["Respondent", "Enhed", "Måling", *(headers or [TEXTS[c] for c in ITEMS])])
    ws.append([1, "Kollegiet Bakketoppen", wave, answer, *[1 for _ in ITEMS[1:]]])
    ws.append([2, "Botilbuddet Fangelvej", wave, 9, *[None for _ in ITEMS[1:]]])
    if population:
        pop = wb.create_sheet("Målgruppe")
        pop.append(["Enhed", "Måling", "Målgruppe"])
        pop.append(["Botilbuddet Fangelvej", "2012-05", 24])
        pop.append(["Kollegiet Bakketoppen", "2012-05", 16])
    wb.save(path)
    return path


def test_sample_workbook_parses_without_issues(survey_inbox):
    rows, issues = parse("survey_workbook_xlsx", survey_inbox / "461/survey/2013-05/trivselsmaaling_461_2013-05.xlsx",
                         code="461", period="2013-05")
    assert not issues
    answers = [r for t, r in rows if t == "survey_answer_xlsx"]
    population = [r for t, r in rows if t == "survey_population_xlsx"]
    assert len({r[1] for r in answers}) == 11
    assert sum(r[3] for r in population) == 40


def test_workbook_keeps_header_text_and_code(tmp_path):
    rows, issues = parse("survey_workbook_xlsx", workbook(tmp_path / "w.xlsx"), code="461")
    assert not issues
    answers = [r for t, r in rows if t == "survey_answer_xlsx"]
    assert answers[0] == (2, "1", "Kollegiet Bakketoppen", "2012-05", TEXTS[ITEMS[0]], "D", "2", 2)
    assert [r[6:] for r in answers if r[1] == "2"][:2] == [("9", 9), (None, None)]
    assert [r for t, r in rows if t == "survey_population_xlsx"] == [
        (2, "Botilbuddet Fangelvej", "2012-05", 24), (3, "Kollegiet Bakketoppen", "2012-05", 16)]


def test_workbook_header_matching_ignores_case_and_spacing(tmp_path):
    headers = [TEXTS[c] for c in ITEMS]
    headers[0] = "  " + headers[0].upper().replace(" ", "   ") + " "
    rows, issues = parse("survey_workbook_xlsx", workbook(tmp_path / "w.xlsx", headers=headers), code="461")
    assert not issues and rows


def test_workbook_unknown_header_rejects_the_file(tmp_path):
    headers = [TEXTS[c] for c in ITEMS]
    headers[3] = "Er du glad?"
    with pytest.raises(FileRejected, match="Er du glad"):
        parse("survey_workbook_xlsx", workbook(tmp_path / "w.xlsx", headers=headers), code="461")


def test_workbook_code_out_of_scale_is_rejected_with_row_and_column(tmp_path):
    _, issues = parse("survey_workbook_xlsx", workbook(tmp_path / "w.xlsx", answer=6), code="461")
    assert [(i.row, i.column, i.value) for i in issues] == [(2, f"D ({ITEMS[0]})", "6")]
    _, issues = parse("survey_workbook_xlsx", workbook(tmp_path / "w2.xlsx", answer="høj"), code="461")
    assert [(i.row, i.value) for i in issues] == [(2, "høj")]


def test_workbook_without_population_sheet_or_not_a_workbook(tmp_path):
    with pytest.raises(FileRejected, match="Målgruppe"):
        parse("survey_workbook_xlsx", workbook(tmp_path / "w.xlsx", population=False), code="461")
    fake = tmp_path / "x.xlsx"
    fake.write_text("respondent;enhed\n", encoding="utf-8")
    with pytest.raises(FileRejected, match="not an Excel workbook"):
        parse("survey_workbook_xlsx", fake, code="461")


def test_workbook_wave_as_text_must_match_period(tmp_path):
    _, issues = parse("survey_workbook_xlsx", workbook(tmp_path / "w.xlsx", wave="2013-05"), code="461")
    assert {(i.row, i.column) for i in issues} == {(2, "Måling"), (3, "Måling")}
