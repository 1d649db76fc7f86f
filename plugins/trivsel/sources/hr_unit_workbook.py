"""hr_unit_workbook: unit-level HR statistics workbook (Fredericia).

Sick leave as % of the whole staff group per unit and month, with a year sheet. Two layouts, detected from
the sheet names and recorded per row as `source_system`:

- `old_hr_system` (until 2012): sheet 'År' (header row 'Afdeling | 2010 | 2011 | ...', one column per
  year) and optionally sheet 'Måned' (header row 'Afdeling | Måned | Sygefravær %', Måned as YYYY-MM);
- `new_hr_system_2013` (the new HR system from 2013): sheets 'Årsoversigt' (header row
  'Organisation | År | Sygefravær pct.') and 'Månedsoversigt' (header row 'Organisation | År | Måned |
  Sygefravær pct.'); either may be absent (a monthly delivery has no finished year).

Figures are kept as delivered ('Ej oplyst', '-', '(19,78)', '7,00/(10,24)') and taken apart.
See docs/sources/hr_unit_workbook.md.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

from openpyxl import load_workbook
from openpyxl.utils import get_column_letter

from trivsel.sources._absence_common import excel_text, parse_figure, unit_lookup
from trivsel.sources.base import Column, DeliveryContext, FileRejected, RawTable, Scheme
from trivsel.sources.hr_unit_year_summary import VALUE_COLUMNS

OLD, NEW = "old_hr_system", "new_hr_system_2013"
TOTAL_LABELS = {"gn.snit", "gn. snit", "gennemsnit", "i alt", "total"}

SCHEME = Scheme(
    name="hr_unit_workbook",
    source="hr_absence",
    suffixes=(".xlsx",),
    description="Unit-level HR statistics workbook: sick leave % of the whole staff group per unit, month, year",
    tables=(
        RawTable(
            "hr_unit_workbook_value",
            (
                Column("source_row", "integer", "row in the sheet (1-based)"),
                Column("sheet_name", "text", "the sheet the figure comes from"),
                Column("cell", "text", "cell reference of the figure (e.g. C5)"),
                Column("source_system", "text", "detected layout: old_hr_system | new_hr_system_2013"),
                Column("unit_text", "text", "unit name as delivered"),
                Column("year", "integer", "year of the figure"),
                Column("month", "integer", "month of the figure (1-12); null for a year figure"),
                *VALUE_COLUMNS,
            ),
            "One row per unit x year (year sheet) or unit x month (month sheet)",
        ),
    ),
)


def _header_row(rows: list[tuple], first: str) -> int | None:
    for i, values in enumerate(rows):
        if values and isinstance(values[0], str) and values[0].strip().casefold() == first.casefold():
            return i
    return None


class _Reader:
    def __init__(self, path: Path, ctx: DeliveryContext, source_system: str):
        self.ctx = ctx
        self.units = unit_lookup(ctx)
        self.source_system = source_system
        self.seen: dict[tuple[str, int, int | None], str] = {}

    def where(self, sheet: str, row: int, col: int) -> str:
        return f"sheet '{sheet}' cell {get_column_letter(col)}{row}"

    def unit(self, sheet: str, row: int, text: str) -> str | None:
        if text.casefold() in self.units:
            return self.units[text.casefold()]
        self.ctx.reject(row=row, column=f"{sheet}!A", reason=f"{self.where(sheet, row, 1)}: unknown unit {text!r} "
                        f"for municipality {self.ctx.municipality_code} (not a unit in config/municipalities.yml "
                        f"nor an alias in dbt/seeds/common/unit_aliases.csv)", value=text)
        return None

    def value(self, sheet: str, row: int, col: int, unit_text: str, year: int, month: int | None,
              raw: object) -> tuple | None:
        canonical = self.unit(sheet, row, unit_text)
        text = excel_text(raw)
        column = f"{sheet}!{get_column_letter(col)}"
        try:
            figure = parse_figure(text)
        except ValueError as exc:
            self.ctx.reject(row=row, column=column, reason=f"{self.where(sheet, row, col)}: {exc}", value=text)
            return None
        if figure.value is not None and figure.value > 100 or (figure.second_value or 0) > 100:
            self.ctx.reject(row=row, column=column, reason=f"{self.where(sheet, row, col)}: a percentage above 100",
                            value=text)
            return None
        if canonical is None:
            return None
        key = (canonical, year, month)
        if key in self.seen:
            self.ctx.reject(row=row, column=column, reason=f"{self.where(sheet, row, col)}: unit {canonical!r} "
                            f"{year}{'' if month is None else f'-{month:02d}'} already given in {self.seen[key]}")
            return None
        self.seen[key] = f"sheet '{sheet}' cell {get_column_letter(col)}{row}"
        return (row, sheet, f"{get_column_letter(col)}{row}", self.source_system, unit_text, year, month,
                *figure.row())

    def year_ok(self, sheet: str, row: int, col: int, year: object, month: object = None) -> tuple | None:
        try:
            y = int(str(year).strip())
            m = None if month is None else int(str(month).strip())
        except ValueError:
            self.ctx.reject(row=row, column=f"{sheet}!{get_column_letter(col)}", reason=f"{self.where(sheet, row, col)}: "
                            f"not a year/month", value=f"{year} {month or ''}")
            return None
        if not 1990 <= y <= self.ctx.year or (m is not None and not 1 <= m <= 12) or (
                m is not None and f"{y:04d}-{m:02d}" > self.ctx.period):
            self.ctx.reject(row=row, column=f"{sheet}!{get_column_letter(col)}", reason=f"{self.where(sheet, row, col)}: "
                            f"year/month {y}{'' if m is None else f'-{m:02d}'} outside the delivery's period "
                            f"{self.ctx.period}", value=f"{year} {month or ''}")
            return None
        return y, m


def _is_total(text: str) -> bool:
    return text.strip().casefold() in TOTAL_LABELS


def _month_parts(value: object) -> tuple[object, object]:
    if isinstance(value, datetime | date):
        return value.year, value.month
    text = str(value).strip()
    if len(text) == 7 and text[4] == "-":
        return text[:4], text[5:]
    return text, ""


def _old_year_sheet(r: _Reader, ws) -> Iterator[tuple]:
    rows = list(ws.iter_rows(min_row=1, max_row=10, values_only=True))
    h = _header_row(rows, "Afdeling")
    if h is None:
        raise FileRejected(f"sheet '{ws.title}' has no header row starting with 'Afdeling'")
    years: dict[int, object] = {i: v for i, v in enumerate(rows[h]) if i > 0 and v not in (None, "")}
    for number, values in enumerate(ws.iter_rows(min_row=h + 2, values_only=True), start=h + 2):
        if not values or values[0] in (None, "") or _is_total(str(values[0])):
            continue
        unit_text = str(values[0]).strip()
        for i, year in years.items():
            ym = r.year_ok(ws.title, h + 1, i + 1, year)
            if ym is None:
                continue
            cell = values[i] if i < len(values) else None
            out = r.value(ws.title, number, i + 1, unit_text, ym[0], None, cell)
            if out:
                yield out


def _long_sheet(r: _Reader, ws, first: str, has_month: bool, month_as_text: bool) -> Iterator[tuple]:
    rows = list(ws.iter_rows(min_row=1, max_row=10, values_only=True))
    h = _header_row(rows, first)
    if h is None:
        raise FileRejected(f"sheet '{ws.title}' has no header row starting with '{first}'")
    width = 3 if month_as_text else (4 if has_month else 3)
    for number, values in enumerate(ws.iter_rows(min_row=h + 2, values_only=True), start=h + 2):
        if not values or values[0] in (None, "") or _is_total(str(values[0])):
            continue
        values = tuple(values) + (None,) * max(0, width - len(values))
        unit_text = str(values[0]).strip()
        if month_as_text:  # old 'Måned': Afdeling | Måned (YYYY-MM) | Sygefravær %
            year, month = _month_parts(values[1])
            ym = r.year_ok(ws.title, number, 2, year, month or 0)
            raw, col = values[2], 3
        elif has_month:  # new 'Månedsoversigt': Organisation | År | Måned | Sygefravær pct.
            ym = r.year_ok(ws.title, number, 2, values[1], values[2])
            raw, col = values[3], 4
        else:  # new 'Årsoversigt': Organisation | År | Sygefravær pct.
            ym = r.year_ok(ws.title, number, 2, values[1])
            raw, col = values[2], 3
        if ym is None:
            continue
        out = r.value(ws.title, number, col, unit_text, ym[0], ym[1], raw)
        if out:
            yield out


def parse(path: Path, ctx: DeliveryContext) -> Iterator[tuple[str, tuple]]:
    if not zipfile.is_zipfile(path):
        raise FileRejected("not an .xlsx workbook (an Excel 2007+ file is a zip archive); "
                           "a CSV or an old .xls renamed to .xlsx cannot be read")
    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure to open is a file-level rejection
        raise FileRejected(f"cannot be opened as an .xlsx workbook: {exc}") from exc
    try:
        sheets = {s.strip().casefold(): s for s in wb.sheetnames}
        if "år" in sheets:
            r = _Reader(path, ctx, OLD)
            yield from (("hr_unit_workbook_value", row) for row in _old_year_sheet(r, wb[sheets["år"]]))
            if "måned" in sheets:
                yield from (("hr_unit_workbook_value", row)
                            for row in _long_sheet(r, wb[sheets["måned"]], "Afdeling", True, True))
        elif "årsoversigt" in sheets or "månedsoversigt" in sheets:
            r = _Reader(path, ctx, NEW)
            if "årsoversigt" in sheets:
                yield from (("hr_unit_workbook_value", row)
                            for row in _long_sheet(r, wb[sheets["årsoversigt"]], "Organisation", False, False))
            if "månedsoversigt" in sheets:
                yield from (("hr_unit_workbook_value", row)
                            for row in _long_sheet(r, wb[sheets["månedsoversigt"]], "Organisation", True, False))
        else:
            raise FileRejected(f"unrecognised workbook layout: expected a sheet 'År' (old HR "
                               f"system) or 'Årsoversigt'/'Månedsoversigt' (new HR system from 2013); found "
                               f"{', '.join(wb.sheetnames)}")
    finally:
        wb.close()
