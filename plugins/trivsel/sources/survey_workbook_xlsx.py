"""Scheme `survey_workbook_xlsx`: the NFA short questionnaire as an Excel workbook (Odense), see
docs/sources/survey_workbook_xlsx.md.

Sheet `Besvarelser`: one row per respondent; columns `Respondent`, `Enhed`, `Måling` (wave, `YYYY-MM` text
or a date in the month), then one column per item with the item's Danish TEXT as its header. Answers are
numeric codes where 1 is the MOST favourable answer (the reverse of scheme 1's order for positively worded
items), 9 = 'Ved ikke'; blank = not answered. Sheet `Målgruppe`: `Enhed`, `Måling`, `Målgruppe`.

The parser keeps the header text and the code as delivered; dbt maps text → item code
(seed survey_items) and code → label (seed survey_workbook_codes). The seeds are read here only to reject
unknown headers and codes early, with row and column.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

from openpyxl.utils import get_column_letter

from trivsel.sources._workbook import NoCachedValue, Workbook, reject_formulas
from trivsel.sources.base import Column, DeliveryContext, FileRejected, RawTable, Scheme
from trivsel.sources.survey_respondent_csv import (
    check_unit_and_wave,
    load_items,
    load_workbook_codes,
)

ANSWER_SHEET = "Besvarelser"
POPULATION_SHEET = "Målgruppe"
RESPONDENT_COLUMN = "Respondent"
UNIT_COLUMN = "Enhed"
WAVE_COLUMN = "Måling"
POPULATION_COLUMN = "Målgruppe"

SCHEME = Scheme(
    name="survey_workbook_xlsx",
    source="survey",
    suffixes=(".xlsx",),
    description="NFA short questionnaire as a workbook: item texts as headers, codes 1 = most favourable",
    tables=(
        RawTable(
            "survey_answer_xlsx",
            (
                Column("source_row", "integer", "row in sheet Besvarelser (header = 1)"),
                Column("respondent_id", "text", "column Respondent as delivered"),
                Column("unit_name", "text", "column Enhed as delivered"),
                Column("wave", "text", "column Måling as YYYY-MM"),
                Column("item_header", "text", "the column header: the item's Danish text as delivered"),
                Column("column_letter", "text", "the column in the sheet (A, B, …)"),
                Column("answer_value", "text", "the cell as delivered; null when blank"),
                Column("answer_code", "integer", "the cell as a whole number; null when blank"),
            ),
            description="one row per respondent × item, codes as delivered",
        ),
        RawTable(
            "survey_population_xlsx",
            (
                Column("source_row", "integer", "row in sheet Målgruppe (header = 1)"),
                Column("unit_name", "text", "column Enhed as delivered"),
                Column("wave", "text", "column Måling as YYYY-MM"),
                Column("target_population", "integer", "column Målgruppe: staff invited to answer"),
            ),
            description="one row per unit and wave",
        ),
    ),
    accounts_rows=True,
)


def header_key(text: str) -> str:
    """How a header is matched to survey_items.text_da (dbt uses the same rule): case and runs of
    whitespace do not matter."""
    return " ".join(str(text).split()).lower()


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return " ".join(str(value).split())


def _wave(value) -> str:
    if isinstance(value, dt.datetime | dt.date):
        return value.strftime("%Y-%m")
    return _text(value)


def _code(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _header(rows: list[tuple], required: tuple[str, ...], sheet: str) -> list[str]:
    first = rows[0] if rows else ()
    if any(isinstance(v, NoCachedValue) for v in first):
        cell = next(v for v in first if isinstance(v, NoCachedValue))
        raise FileRejected(f"sheet {sheet}: header {cell}", row=1)
    header = [_text(v) for v in first]
    while header and not header[-1]:
        header.pop()
    missing = [c for c in required if c.lower() not in {h.lower() for h in header}]
    if missing:
        raise FileRejected(f"sheet {sheet}: missing columns: {', '.join(missing)}", row=1)
    return header


def _sheet_rows(workbook: Workbook, sheet: str, fill: tuple[str, ...]) -> list[tuple]:
    """The visible sheet's rows, merges in the `fill` columns (by header text) filled downwards."""
    def columns(header: list) -> list[int]:
        texts = [_text(v).lower() for v in header]
        return [texts.index(c.lower()) + 1 for c in fill if c.lower() in texts]

    return workbook.rows(sheet, header=1, fill_columns=columns)[1]


def parse(path: Path, ctx: DeliveryContext) -> Iterator[tuple[str, tuple]]:
    """Only visible sheets are read; Enhed and Måling cells merged over several rows fill each row; any
    other merge at or below the header, and a formula without a cached value, reject the file or row."""
    items = load_items()
    codes = load_workbook_codes()
    by_text = {header_key(row["text_da"]): row for row in items.values()}
    workbook = Workbook(path)
    try:
        for sheet in (ANSWER_SHEET, POPULATION_SHEET):
            if not workbook.has(sheet):  # both sheets or nothing
                raise FileRejected(f"no visible sheet {sheet!r} ({workbook.describe()})")
        answers = _sheet_rows(workbook, ANSWER_SHEET, (UNIT_COLUMN, WAVE_COLUMN))
        population = _sheet_rows(workbook, POPULATION_SHEET, (UNIT_COLUMN, WAVE_COLUMN))
    finally:
        workbook.close()
    yield from _answers(answers, ctx, items, codes, by_text)
    yield from _population(population, ctx)


def _answers(rows: list[tuple], ctx, items, codes, by_text) -> Iterator[tuple[str, tuple]]:
    base = (RESPONDENT_COLUMN, UNIT_COLUMN, WAVE_COLUMN)
    header = _header(rows, base, ANSWER_SHEET)
    lowered = [h.lower() for h in header]
    pos = {c: lowered.index(c.lower()) for c in base}
    item_columns: list[tuple[int, str, dict]] = []
    unknown = []
    for i, text in enumerate(header):
        if i in pos.values():
            continue
        item = by_text.get(header_key(text))
        if item is None:
            unknown.append(f"{get_column_letter(i + 1)} {text!r}")
        else:
            item_columns.append((i, text, item))
    if unknown:
        raise FileRejected(f"sheet {ANSWER_SHEET}: headers that are no item text in survey_items.csv: "
                           f"{'; '.join(unknown)}", row=1)
    found = {item["item_code"] for _, _, item in item_columns}
    missing = [code for code in items if code not in found]
    if missing:
        raise FileRejected(f"sheet {ANSWER_SHEET}: missing item columns: {', '.join(missing)}", row=1)
    if len(found) != len(item_columns):
        raise FileRejected(f"sheet {ANSWER_SHEET}: an item appears in more than one column", row=1)
    seen: dict[str, int] = {}
    for row_number, values in enumerate(rows[1:], start=2):
        values = tuple(values) + (None,) * max(0, len(header) - len(values))
        if all(v is None or _text(v) == "" for v in values):
            continue
        ctx.read_row(row_number, "survey_answer_xlsx")
        if reject_formulas(ctx, ANSWER_SHEET, row_number, values):
            continue
        respondent = _text(values[pos[RESPONDENT_COLUMN]])
        unit = _text(values[pos[UNIT_COLUMN]])
        wave = _wave(values[pos[WAVE_COLUMN]])
        if not respondent:
            ctx.reject(row=row_number, column=RESPONDENT_COLUMN, reason="respondent id is missing")
            continue
        if respondent in seen:
            ctx.reject(row=row_number, column=RESPONDENT_COLUMN,
                       reason=f"respondent id repeats row {seen[respondent]}", value=respondent)
            continue
        seen[respondent] = row_number
        if not check_unit_and_wave(ctx, row_number, unit, wave, unit_column=UNIT_COLUMN,
                                   wave_column=WAVE_COLUMN):
            continue
        for i, text, item in item_columns:
            cell = values[i]
            shown = _text(cell)
            letter = get_column_letter(i + 1)
            if shown == "":
                yield "survey_answer_xlsx", (row_number, respondent, unit, wave, text, letter, None, None)
                continue
            code = _code(cell)
            valid = codes[(item["scale"], item["direction"])]
            if code is None or code not in valid:
                ctx.reject(row=row_number, column=f"{letter} ({item['item_code']})",
                           reason=f"answer code not in {sorted(valid)} for scale {item['scale']}",
                           value=shown)
                continue
            yield "survey_answer_xlsx", (row_number, respondent, unit, wave, text, letter, shown, code)


def _population(rows: list[tuple], ctx) -> Iterator[tuple[str, tuple]]:
    required = (UNIT_COLUMN, WAVE_COLUMN, POPULATION_COLUMN)
    header = _header(rows, required, POPULATION_SHEET)
    lowered = [h.lower() for h in header]
    pos = {c: lowered.index(c.lower()) for c in required}
    seen: dict[str, int] = {}
    for row_number, values in enumerate(rows[1:], start=2):
        values = tuple(values) + (None,) * max(0, len(header) - len(values))
        if all(v is None or _text(v) == "" for v in values):
            continue
        ctx.read_row(row_number, "survey_population_xlsx")
        if reject_formulas(ctx, POPULATION_SHEET, row_number, values):
            continue
        unit = _text(values[pos[UNIT_COLUMN]])
        wave = _wave(values[pos[WAVE_COLUMN]])
        if not check_unit_and_wave(ctx, row_number, unit, wave, unit_column=UNIT_COLUMN,
                                   wave_column=WAVE_COLUMN):
            continue
        if unit in seen:
            ctx.reject(row=row_number, column=UNIT_COLUMN, reason=f"unit repeats row {seen[unit]}",
                       value=unit)
            continue
        seen[unit] = row_number
        population = _code(values[pos[POPULATION_COLUMN]])
        if population is None or population < 0:
            ctx.reject(row=row_number, column=POPULATION_COLUMN,
                       reason="target population is not a whole number",
                       value=_text(values[pos[POPULATION_COLUMN]]))
            continue
        yield "survey_population_xlsx", (row_number, unit, wave, population)
