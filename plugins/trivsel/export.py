"""`trivsel export`: the certified tables and their data dictionary, for evaluators.

Reads only schema certified, as the role `evaluator`, and refuses to run if it cannot log in as or take
that role (warehouse.RoleUnavailable): an export never contains anything an evaluator may not see. Writes one file per table (csv, parquet) or one workbook
with a sheet per table (xlsx), plus the data dictionary (certified.data_dictionary, generated from the dbt
manifest at certification: every column's type, constraints and description) and publication.json (the
latest certified.publication_log entry).

Spreadsheet safety: in csv and xlsx, a text cell starting with = + - @ (or a tab / carriage return) is
prefixed with an apostrophe, so no spreadsheet evaluates it as a formula (CSV/formula injection).
Numbers stay numbers (a negative number is written as a number). A CSV may be opened with either list
separator (Danish Excel splits on `;`, others on `,`), so a text cell is also neutralised after every `,` and
`;` inside it, where the other separator would start a new cell, and a text cell containing `,`, `;`, a quote
or a line break is always quoted.

Locales: the default CSV is machine-friendly (`,` between cells, `.` decimals). `--locale da` writes what
Danish Excel opens as columns (`;` between cells, decimal comma, UTF-8 with BOM); `--locale both` writes
both (`<table>.csv` and `<table>.da.csv`). The xlsx has a row of Danish labels over the column names
(export_format.labels), number formats, frozen header rows, an autofilter and column widths. The data
dictionary lists each coded column's full code list with Danish labels, and marks which columns are
suppressed in which table (export_format.enrich_dictionary).
"""

from __future__ import annotations

import json
import logging
import re
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from psycopg import sql

from trivsel import evaluator, export_format
from trivsel.certify import CERTIFIED, TABLES
from trivsel.config import validate_period

log = logging.getLogger(__name__)

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
EXPORT_TABLES = (*TABLES.values(), "publication_log", "data_dictionary")


def neutralise(value: Any) -> Any:
    """A text cell a spreadsheet would read as a formula gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


SEPARATORS = (",", ";")
LOCALES = ("intl", "da", "both")
# A formula character at the start of what a spreadsheet may read as a cell: after a separator or a line
# break inside a text (under the other list separator, or when the quoting is not honoured, a new cell or row
# starts there), after blanks or quotes, which Excel skips.
_INNER_FORMULA = re.compile(r"""((?:^|[,;\r\n])[\s"]*)(?=[=+\-@])""")
_NEEDS_QUOTES = re.compile(r"""[,;"\r\n]|^\s|\s$""")


def neutralise_csv_text(value: str) -> str:
    """A text cell safe under both list separators: neutralised at its start and after every inner , ; or
    line break (an apostrophe before the formula character)."""
    return _INNER_FORMULA.sub(r"\1'", neutralise(value))


def csv_field(value: Any, decimal: str = ".") -> str:
    """One CSV field. Numbers bare (so they stay numbers, negative ones too; with decimal="," as Danish
    Excel reads them); text neutralised and quoted whenever it holds a separator of either kind, a quote or
    a line break."""
    value = _plain(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (float, Decimal)):
        return str(value).replace(".", decimal)
    text = neutralise_csv_text(str(value))
    if _NEEDS_QUOTES.search(text):
        return '"' + text.replace('"', '""') + '"'
    return text


def write_csv(path: Path, cols: list[str], rows: list[tuple], sep: str = ",", decimal: str = ".") -> Path:
    """One table as CSV (UTF-8 with BOM, CRLF, as Excel expects), safe under `,` and `;` alike. A decimal
    comma needs `;` between cells (a number is never quoted)."""
    if sep not in SEPARATORS:
        raise ValueError(f"separator must be one of {SEPARATORS}, got {sep!r}")
    if decimal == sep:
        raise ValueError("the decimal mark cannot be the list separator")
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        fh.write(sep.join(csv_field(c) for c in cols) + "\r\n")
        for row in rows:
            fh.write(sep.join(csv_field(v, decimal) for v in row) + "\r\n")
    return path


def write_xlsx(path: Path, tables: dict[str, tuple[list[str], list[tuple]]]) -> Path:
    """One sheet per table: a Danish label row over the column names, number formats, frozen header rows,
    autofilter and widths (export_format); text cells neutralised (openpyxl would store a leading = as a
    formula)."""
    from openpyxl import Workbook

    wb = Workbook()
    wb.remove(wb.active)
    for table, (cols, rows) in tables.items():
        ws = wb.create_sheet(title=table[:31])
        ws.append([neutralise(export_format.label_da(c)) for c in cols])
        ws.append([neutralise(c) for c in cols])
        for row in rows:
            cells = []
            for v in row:
                v = _plain(v)
                if isinstance(v, Decimal):
                    v = float(v)
                elif isinstance(v, datetime):
                    v = v.replace(tzinfo=None)
                cells.append(neutralise(v))
            ws.append(cells)
        export_format.format_sheet(ws, cols, rows)
    wb.save(path)
    return path


def _plain(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.isoformat()
    return value


def _filter(columns: list[str], period: str | None) -> tuple[sql.Composable, list]:
    if not period:
        return sql.SQL(""), []
    year = int(period[:4])
    for col, value in (("period", period), ("wave", period), ("year", year), ("followup_year", year)):
        if col in columns:
            return sql.SQL(" where {} = %s").format(sql.Identifier(col)), [value]
    return sql.SQL(""), []


def read_tables(conn, period: str | None = None) -> dict[str, tuple[list[str], list[tuple]]]:
    out = {}
    for table in EXPORT_TABLES:
        cols = [r[0] for r in conn.execute(
            "select column_name from information_schema.columns where table_schema = %s and table_name = %s"
            " order by ordinal_position", (CERTIFIED, table)).fetchall()]
        if not cols:
            continue
        where, params = _filter(cols, period) if table != "data_dictionary" else (sql.SQL(""), [])
        keys = ["table_name", "ordinal"] if table == "data_dictionary" else cols[:4]
        order = sql.SQL(", ").join(sql.Identifier(c) for c in keys)
        rows = conn.execute(sql.SQL("select * from {}.{}{} order by {}").format(
            sql.Identifier(CERTIFIED), sql.Identifier(table), where, order), params).fetchall()
        out[table] = (cols, rows)
    return out


def export(out: Path, period: str | None = None, fmt: str = "csv", url: str | None = None,
           sep: str | None = None, locale: str = "intl") -> list[Path]:
    if period:
        validate_period(period)
    if locale not in LOCALES:
        raise ValueError(f"unknown locale {locale!r}: one of {', '.join(LOCALES)}")
    if locale in ("da", "both") and sep == ",":
        raise ValueError("--locale da writes ';' between cells (its decimal comma needs it)")
    sep = sep or ","
    if sep not in SEPARATORS:
        raise ValueError(f"separator must be one of {SEPARATORS}, got {sep!r}")
    if fmt not in ("csv", "parquet", "xlsx"):
        raise ValueError(f"unknown format {fmt!r}")
    # as evaluator, or not at all (warehouse.RoleUnavailable; evaluator.WarehouseDown when it is stopped):
    # an export holds what an evaluator may read
    conn = evaluator.connect(url, autocommit=True)
    out.mkdir(parents=True, exist_ok=True)
    with conn:
        role = conn.execute("select current_user").fetchone()[0]
        tables = read_tables(conn, period)
    if "publication_log" not in tables:
        raise RuntimeError("nothing certified yet: certified.publication_log does not exist "
                           "(run the pipeline or `trivsel certify --period …`)")
    if "data_dictionary" in tables:
        tables["data_dictionary"] = export_format.enrich_dictionary(tables["data_dictionary"], tables)
    written: list[Path] = []
    if fmt == "csv":
        for table, (cols, rows) in tables.items():
            if locale in ("intl", "both"):
                written.append(write_csv(out / f"{table}.csv", cols, rows, sep))
            if locale in ("da", "both"):
                name = f"{table}.da.csv" if locale == "both" else f"{table}.csv"
                written.append(write_csv(out / name, cols, rows, ";", decimal=","))
    elif fmt == "xlsx":
        written.append(write_xlsx(out / f"trivsel_certified{'_' + period if period else ''}.xlsx", tables))
    else:
        try:
            import pandas as pd
            import pyarrow  # noqa: F401
        except ImportError as exc:
            raise RuntimeError("--format parquet needs pyarrow (pip install pyarrow)") from exc
        for table, (cols, rows) in tables.items():
            df = pd.DataFrame([[_plain(v) if isinstance(v, (dict, list)) else v for v in r] for r in rows],
                              columns=cols)
            for c in df.columns:
                if df[c].map(lambda v: isinstance(v, Decimal)).any():
                    df[c] = df[c].astype("float64")
            path = out / f"{table}.parquet"
            df.to_parquet(path, index=False)
            written.append(path)
    cols, rows = tables["publication_log"]
    latest = dict(zip(cols, rows[-1], strict=True)) if rows else {}
    if rows:
        # the latest published version (a refused attempt, outcome 'refused', changed no table)
        published = [d for d in (dict(zip(cols, r, strict=True)) for r in rows) if d.get("outcome", "published")
                     == "published"] or [dict(zip(cols, r, strict=True)) for r in rows]
        latest = max(published, key=lambda r: r["publication_id"])
    meta = {"exported_at": datetime.now().astimezone().isoformat(), "read_as_role": role, "period_filter": period,
            "format": fmt, "tables": {t: len(r) for t, (_, r) in tables.items()},
            "latest_publication": {k: (v.isoformat() if isinstance(v, (date, datetime)) else v)
                                   for k, v in latest.items()}}
    path = out / "publication.json"
    path.write_text(json.dumps(meta, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    written.append(path)
    log.info("exported %d certified tables to %s as %s", len(tables), out, fmt)
    return written
