"""`trivsel export`: the certified tables and their data dictionary, for evaluators.

Reads only schema certified, as the role `evaluator` where the connection may take it (so an export can
never contain anything an evaluator may not see). Writes one file per table (csv, parquet) or one workbook
with a sheet per table (xlsx), plus the data dictionary (certified.data_dictionary, generated from the dbt
manifest at certification: every column's type, constraints and description) and publication.json (the
latest certified.publication_log entry).

Spreadsheet safety: in csv and xlsx, a text cell starting with = + - @ (or a tab / carriage return) is
prefixed with an apostrophe, so no spreadsheet evaluates it as a formula (CSV/formula injection).
Numbers stay numbers.
"""

from __future__ import annotations

import csv
import json
import logging
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from trivsel import warehouse
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


def _plain(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.isoformat()
    return value


def _as_evaluator(conn) -> bool:
    try:
        conn.execute("set role evaluator")
        return True
    except psycopg.Error:
        conn.rollback()
        return False


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


def export(out: Path, period: str | None = None, fmt: str = "csv", url: str | None = None) -> list[Path]:
    if period:
        validate_period(period)
    if fmt not in ("csv", "parquet", "xlsx"):
        raise ValueError(f"unknown format {fmt!r}")
    out.mkdir(parents=True, exist_ok=True)
    with psycopg.connect(url or warehouse.url(), autocommit=True) as conn:
        role = "evaluator" if _as_evaluator(conn) else conn.execute("select current_user").fetchone()[0]
        tables = read_tables(conn, period)
    if "publication_log" not in tables:
        raise RuntimeError("nothing certified yet: certified.publication_log does not exist "
                           "(run the pipeline or `trivsel certify --period …`)")
    written: list[Path] = []
    if fmt == "csv":
        for table, (cols, rows) in tables.items():
            path = out / f"{table}.csv"
            with path.open("w", encoding="utf-8-sig", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(cols)
                for row in rows:
                    w.writerow([neutralise(_plain(v)) for v in row])
            written.append(path)
    elif fmt == "xlsx":
        from openpyxl import Workbook

        wb = Workbook(write_only=True)
        for table, (cols, rows) in tables.items():
            ws = wb.create_sheet(title=table[:31])
            ws.append(cols)
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
        path = out / f"trivsel_certified{'_' + period if period else ''}.xlsx"
        wb.save(path)
        written.append(path)
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
        latest = max((dict(zip(cols, r, strict=True)) for r in rows), key=lambda r: r["publication_id"])
    meta = {"exported_at": datetime.now().astimezone().isoformat(), "read_as_role": role, "period_filter": period,
            "format": fmt, "tables": {t: len(r) for t, (_, r) in tables.items()},
            "latest_publication": {k: (v.isoformat() if isinstance(v, (date, datetime)) else v)
                                   for k, v in latest.items()}}
    path = out / "publication.json"
    path.write_text(json.dumps(meta, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    written.append(path)
    log.info("exported %d certified tables to %s as %s", len(tables), out, fmt)
    return written
