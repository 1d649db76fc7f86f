"""Reading a delivered .xlsx the documented way, shared by the workbook schemes.

Why a module of its own: a workbook can hide what a reader sees. Three rules hold for every workbook scheme
(and each scheme's docs page says which sheets and columns they apply to):

- **Only visible sheets are read.** A hidden or very hidden sheet is never read, not even when it carries the
  expected name: its figures are not what the municipality looked at.
- **Merged cells**: openpyxl gives a merged range's value only in its top-left cell. A merge in a column the
  scheme names (the unit column, say) fills every cell of the merge with that value; a merge above the
  header row (a title) is ignored; a merge anywhere else rejects the file, since which rows a merged
  figure belongs to is a guess.
- **A formula without a cached value** (a workbook written by a program that never calculated it) is not an
  empty cell: its value is `NoCachedValue`, and the scheme rejects it with its cell.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from openpyxl import load_workbook
from openpyxl.utils import get_column_letter

from trivsel.sources.base import DeliveryContext, FileRejected


@dataclass(frozen=True)
class NoCachedValue:
    """A formula cell the workbook holds no calculated value for."""

    coordinate: str

    def __str__(self) -> str:
        return f"formula without a cached value in cell {self.coordinate}"


def formula_reason(coordinate: str) -> str:
    return (f"formula without a cached value in cell {coordinate} (the workbook was saved without calculating "
            f"it: open it in Excel, let it calculate, save and deliver it again)")


class Workbook:
    """The visible sheets of a workbook as lists of row tuples (values as Excel last calculated them)."""

    def __init__(self, path: Path):
        if not zipfile.is_zipfile(path):
            raise FileRejected("not an .xlsx workbook (not an Excel workbook at all: an Excel 2007+ file is a "
                               "zip archive; a CSV or an old .xls renamed to .xlsx cannot be read)")
        try:
            self._values = load_workbook(path, data_only=True)
            self._formulas = load_workbook(path, read_only=True, data_only=False)
        except Exception as exc:  # noqa: BLE001 - any failure to open is a file-level rejection
            raise FileRejected(f"cannot be opened as an .xlsx workbook: {type(exc).__name__}: {exc}") from exc
        self.sheetnames = list(self._values.sheetnames)
        self.visible = {ws.title.strip().casefold(): ws.title for ws in self._values.worksheets
                        if ws.sheet_state == "visible"}
        self.hidden = [ws.title for ws in self._values.worksheets if ws.sheet_state != "visible"]

    def close(self) -> None:
        self._formulas.close()
        self._values.close()

    def has(self, name: str) -> bool:
        return name.strip().casefold() in self.visible

    def describe(self) -> str:
        shown = ", ".join(self.visible.values()) or "none"
        return f"visible sheets: {shown}" + (f"; hidden (never read): {', '.join(self.hidden)}" if self.hidden else "")

    def rows(self, name: str, *, header: int | str,
             fill_columns: Iterable[int] | Callable[[list], Iterable[int]] = ()) -> tuple[int, list[tuple]]:
        """(header row number, all rows) of the visible sheet `name` (1-based row r is rows[r - 1]). The
        header is row `header`, or the first of the first ten rows whose column A is the text `header`.
        Merges in `fill_columns` (1-based column numbers, or a function of the header row's values giving
        them) below the header are filled, formulas without a
        value are NoCachedValue. Raises FileRejected for a merge elsewhere at or below the header row."""
        title = self.visible.get(name.strip().casefold())
        if title is None:
            hidden = [t for t in self.hidden if t.strip().casefold() == name.strip().casefold()]
            raise FileRejected(f"no visible sheet {name!r}" + (" (a hidden sheet of that name is never read)"
                                                                if hidden else "") + f"; {self.describe()}")
        try:
            ws = self._values[title]
            rows = [list(r) for r in ws.iter_rows(values_only=True)]
            if isinstance(header, int):
                header_row = header
            else:
                header_row = next((i for i, r in enumerate(rows[:10], start=1) if r and isinstance(r[0], str)
                                   and r[0].strip().casefold() == header.casefold()), 0)
                if not header_row:
                    raise FileRejected(f"sheet '{title}' has no header row starting with '{header}'")
            for r, values in enumerate(self._formulas[title].iter_rows(values_only=True), start=1):
                if r > len(rows):
                    break
                for c, formula in enumerate(values, start=1):
                    is_formula = (isinstance(formula, str) and formula.startswith("=")) or \
                        type(formula).__name__ in ("ArrayFormula", "DataTableFormula")
                    if is_formula and c <= len(rows[r - 1]) and rows[r - 1][c - 1] is None:
                        rows[r - 1][c - 1] = NoCachedValue(f"{get_column_letter(c)}{r}")
            fill = set(fill_columns(rows[header_row - 1] if rows else []) if callable(fill_columns)
                       else fill_columns)
            for merged in sorted(ws.merged_cells.ranges, key=lambda m: (m.min_row, m.min_col)):
                if merged.max_row < header_row:
                    continue  # a title above the header
                if merged.min_row > header_row and merged.min_col == merged.max_col and merged.min_col in fill:
                    value = rows[merged.min_row - 1][merged.min_col - 1]
                    for r in range(merged.min_row + 1, merged.max_row + 1):
                        rows[r - 1][merged.min_col - 1] = value
                    continue
                allowed = ", ".join(get_column_letter(c) for c in sorted(fill)) or "none"
                raise FileRejected(f"sheet '{title}': merged cells {merged.coord}; only cells of column(s) "
                                   f"{allowed} below the header may be merged (each row of the merge then gets "
                                   f"the merged value)", row=merged.min_row)
        except FileRejected:
            raise
        except Exception as exc:  # noqa: BLE001 - a corrupt sheet part (zlib, XML, CRC) is a file rejection
            raise FileRejected(f"sheet '{title}' cannot be read: {type(exc).__name__}: {str(exc)[:200]}") from exc
        return header_row, [tuple(r) for r in rows]


def reject_formulas(ctx: DeliveryContext, sheet: str, row: int, values: Iterable) -> bool:
    """Reject every formula without a cached value in a data row; True when there was one."""
    found = False
    for value in values:
        if isinstance(value, NoCachedValue):
            column = value.coordinate.rstrip("0123456789")
            ctx.reject(row=row, column=f"{sheet}!{column}", reason=f"sheet '{sheet}': {formula_reason(value.coordinate)}")
            found = True
    return found
