"""How the evaluator's export reads in a spreadsheet: Danish labels, number formats, the code lists.

Why a module of its own: export.py decides what is exported (certified, as evaluator, formula-safe); this
decides how it looks. Danish column labels are data (templates/export/column_labels.csv); code labels come
from the report's wording (templates/report/wording.yml) and the same file, so report and export name a
code alike.
"""

from __future__ import annotations

import csv
import re
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

LABELS = Path(__file__).resolve().parent / "templates" / "export" / "column_labels.csv"
#: a text column is coded when every value looks like a code and there are few of them
_CODE = re.compile(r"^[a-z][a-z0-9_]*$|^\d{3}$|^ALL$")
MAX_CODES = 30
MIN_WIDTH, MAX_WIDTH = 8, 60


@lru_cache(maxsize=1)
def _labels() -> dict[str, tuple[str, str]]:
    """column or code → (Danish label, English label)."""
    out: dict[str, tuple[str, str]] = {}
    if LABELS.exists():
        with LABELS.open(encoding="utf-8", newline="") as fh:
            out.update({r["name"]: (r["label_da"], r["label_en"]) for r in csv.DictReader(fh)})
    return out


@lru_cache(maxsize=1)
def _code_labels() -> dict[str, tuple[str, str]]:
    from trivsel.report.labels import wording

    out: dict[str, tuple[str, str]] = {}
    for key in ("statuses", "metrics", "registers", "sources"):
        out.update({k: (v["da"], v["en"]) for k, v in (wording().get(key) or {}).items()})
    out.update(_labels())
    return out


def label_da(column: str) -> str:
    """The Danish header of a column (its name when none is recorded)."""
    return _labels().get(column, (column, column))[0]


def number_format(column: str, values: list[Any]) -> str | None:
    """A number format with sensible decimals for a numeric column; None for anything else."""
    nums = [v for v in values if isinstance(v, (int, float, Decimal)) and not isinstance(v, bool)]
    if not nums:
        return None
    if all(isinstance(v, int) for v in nums):
        return "0" if column.endswith(("year", "_id")) or column in ("ordinal",) else "#,##0"
    if column.startswith("p_") or column.endswith("_p") or column == "p_value":
        return "0.000"
    if column in ("response_rate", "share_of_answers") or column.startswith("share_"):
        return "0.0%"
    return "0.00"


def format_sheet(ws, cols: list[str], rows: list[tuple]) -> None:
    """Number formats, bold label row, frozen header rows (labels and names), autofilter, column widths."""
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    bold = Font(bold=True)
    for cell in ws[1]:
        cell.font = bold
    n = len(rows)
    for i, col in enumerate(cols, start=1):
        letter = get_column_letter(i)
        values = [r[i - 1] for r in rows]
        numfmt = number_format(col, values)
        if numfmt and n:
            for (cell,) in ws.iter_rows(min_row=3, max_row=n + 2, min_col=i, max_col=i):
                if isinstance(cell.value, (int, float)) and not isinstance(cell.value, bool):
                    cell.number_format = numfmt
        longest = max([len(str(label_da(col))), len(col)] + [len(str(v)) for v in values[:500] if v is not None
                                                               and not isinstance(v, float)] + [8])
        ws.column_dimensions[letter].width = max(MIN_WIDTH, min(MAX_WIDTH, longest + 2))
    ws.freeze_panes = "A3"
    if cols:
        ws.auto_filter.ref = f"A2:{get_column_letter(len(cols))}{max(n + 2, 2)}"


def _code_list(values: list[Any]) -> str | None:
    distinct = sorted({v for v in values if v is not None}, key=str)
    if not distinct or len(distinct) > MAX_CODES or not all(isinstance(v, str) and _CODE.match(v) for v in distinct):
        return None
    labels = _code_labels()
    return "; ".join(f"{v} = {labels[v][0]} ({labels[v][1]})" if v in labels else v for v in distinct)


def enrich_dictionary(dictionary: tuple[list[str], list[tuple]],
                      tables: dict[str, tuple[list[str], list[tuple]]]) -> tuple[list[str], list[tuple]]:
    """The data dictionary with, per column, its Danish label, its full code list (every code with its
    Danish and English label) and where it is suppressed: `suppressed` is true for a column that is empty
    in some row the table marks suppressed, and `suppressed_rows` counts those rows."""
    cols, rows = dictionary
    out_cols = [*cols, "label_da", "code_list", "suppressed_rows"]
    ti, ci, si = cols.index("table_name"), cols.index("column_name"), cols.index("suppressed")
    out = []
    for row in rows:
        table, column = row[ti], row[ci]
        t_cols, t_rows = tables.get(table, ([], []))
        code_list, hidden = None, 0
        if column in t_cols:
            k = t_cols.index(column)
            values = [r[k] for r in t_rows]
            code_list = _code_list(values)
            if "suppressed" in t_cols and column != "suppressed":
                s = t_cols.index("suppressed")
                hidden = sum(1 for r in t_rows if r[s] and r[k] is None)
        row = list(row)
        row[si] = bool(row[si]) or hidden > 0
        out.append((*row, label_da(column), code_list, hidden))
    return out_cols, out
