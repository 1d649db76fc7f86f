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

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

from openpyxl.utils import get_column_letter

from trivsel.sources._absence_common import excel_text, parse_figure, unit_lookup
from trivsel.sources._workbook import Workbook, reject_formulas
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
            part_column="sheet_name",
        ),
    ),
    accounts_rows=True,
)


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


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _data_rows(r: _Reader, title: str, rows: list[tuple], header_row: int, width: int) -> Iterator[tuple[int, tuple]]:
    """The data rows below the header: blank rows and total rows skipped, every other row counted as read.
    A row whose unit cell is empty (after merges are filled) but has figures is rejected, never skipped."""
    for number in range(header_row + 1, len(rows) + 1):
        values = tuple(rows[number - 1]) + (None,) * max(0, width - len(rows[number - 1]))
        if all(_blank(v) for v in values):
            continue
        if isinstance(values[0], str) and _is_total(values[0]):
            continue  # totals are recomputed, never read
        r.ctx.read_row(number, title)
        if reject_formulas(r.ctx, title, number, values):
            continue
        if _blank(values[0]):
            r.ctx.reject(row=number, column=f"{title}!A", reason=f"{r.where(title, number, 1)}: the unit name "
                         f"is empty in a row with figures (a unit name merged over several rows fills each of "
                         f"them; an unmerged empty cell does not)")
            continue
        yield number, values


def _old_year_sheet(r: _Reader, wb: Workbook, name: str) -> Iterator[tuple]:
    h, rows = wb.rows(name, header="Afdeling", fill_columns=(1,))
    title = wb.visible[name.casefold()]
    years: dict[int, object] = {i: v for i, v in enumerate(rows[h - 1]) if i > 0 and v not in (None, "")}
    for number, values in _data_rows(r, title, rows, h, len(rows[h - 1])):
        unit_text = str(values[0]).strip()
        for i, year in years.items():
            ym = r.year_ok(title, h, i + 1, year)
            if ym is None:
                continue
            cell = values[i] if i < len(values) else None
            out = r.value(title, number, i + 1, unit_text, ym[0], None, cell)
            if out:
                yield out


def _long_sheet(r: _Reader, wb: Workbook, name: str, first: str, has_month: bool,
                month_as_text: bool) -> Iterator[tuple]:
    h, rows = wb.rows(name, header=first, fill_columns=(1,))
    title = wb.visible[name.casefold()]
    width = 3 if month_as_text else (4 if has_month else 3)
    for number, values in _data_rows(r, title, rows, h, width):
        unit_text = str(values[0]).strip()
        if month_as_text:  # old 'Måned': Afdeling | Måned (YYYY-MM) | Sygefravær %
            year, month = _month_parts(values[1])
            ym = r.year_ok(title, number, 2, year, month or 0)
            raw, col = values[2], 3
        elif has_month:  # new 'Månedsoversigt': Organisation | År | Måned | Sygefravær pct.
            ym = r.year_ok(title, number, 2, values[1], values[2])
            raw, col = values[3], 4
        else:  # new 'Årsoversigt': Organisation | År | Sygefravær pct.
            ym = r.year_ok(title, number, 2, values[1])
            raw, col = values[2], 3
        if ym is None:
            continue
        out = r.value(title, number, col, unit_text, ym[0], ym[1], raw)
        if out:
            yield out


def parse(path: Path, ctx: DeliveryContext) -> Iterator[tuple[str, tuple]]:
    """Sheets are found among the VISIBLE sheets only (a hidden sheet is never read, whatever its name);
    unit names merged over several rows fill each row; any other merge below a header rejects the file."""
    wb = Workbook(path)
    try:
        if wb.has("år"):
            r = _Reader(path, ctx, OLD)
            yield from (("hr_unit_workbook_value", row) for row in _old_year_sheet(r, wb, "år"))
            if wb.has("måned"):
                yield from (("hr_unit_workbook_value", row)
                            for row in _long_sheet(r, wb, "måned", "Afdeling", True, True))
        elif wb.has("årsoversigt") or wb.has("månedsoversigt"):
            r = _Reader(path, ctx, NEW)
            if wb.has("årsoversigt"):
                yield from (("hr_unit_workbook_value", row)
                            for row in _long_sheet(r, wb, "årsoversigt", "Organisation", False, False))
            if wb.has("månedsoversigt"):
                yield from (("hr_unit_workbook_value", row)
                            for row in _long_sheet(r, wb, "månedsoversigt", "Organisation", True, False))
        else:
            raise FileRejected(f"unrecognised workbook layout: expected a visible sheet 'År' (old HR "
                               f"system) or 'Årsoversigt'/'Månedsoversigt' (new HR system from 2013); found "
                               f"{wb.describe()}")
    finally:
        wb.close()
