"""The set-based path for large, row-oriented deliveries: COPY the file as delivered, check and reshape in SQL.

Why: a scheme's Python parser handles every row in the interpreter (decimal commas, label checks, the
survey's wide-to-long reshape). That is the reference behaviour and the one that gives the most exact
diagnostics, but a national month is ~4 million raw rows and the interpreter costs ~100x a bare COPY.

A scheme module may therefore also offer ``bulk_plan(path, ctx) -> BulkPlan | None``. The loader uses it for
files of at least ``TRIVSEL_BULK_FROM_BYTES`` (default 64 KiB; 0 = always, ``off`` = never):

1. ``bulk_plan`` reads the header in Python and raises ``FileRejected`` exactly as ``parse`` would; it returns
   ``None`` when the file is not a candidate (the loader then runs ``parse``).
2. The file's bytes are COPYed into a temporary *landing* table of text columns, numbered by physical line.
3. ``prepare`` (optional) runs Python against the landing table, e.g. to pseudonymise the distinct employee
   numbers with the key, which never leaves this process.
4. ``checks`` are SELECTs returning ``(source_row, column_name, reason, value)``, the same rows the parser
   would have passed to ``ctx.reject``. Any issue quarantines the delivery, as in the Python path.
5. ``inserts`` map each raw table to a SELECT of its columns (``source_row`` first) from the landing table.

Whatever PostgreSQL's COPY cannot read exactly as the parser would (an encoding error, a ragged or blank
line, a quoted line break that breaks the line numbering) makes the loader fall back to ``parse``, so the
bulk path changes speed, never results. Each scheme with a plan has a test that loads the same files both ways
and compares raw rows and quarantine reasons (tests/survey/test_survey_bulk.py, tests/absence/test_hr_payroll_bulk.py);
the framework's own cases are in tests/rails/test_loader.py.

Temporary tables live in the loader's transaction (``on commit drop``): clear employee numbers exist only
there, for the seconds of one load, and are never written to a stored table.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from trivsel.privacy import mask_identifiers
from trivsel.sources.base import LOAD_COLUMNS, RowIssue, Scheme

log = logging.getLogger(__name__)

LANDING = "bulk_landing"
DEFAULT_FROM_BYTES = 64 * 1024  # measured: the set-based path is faster from a few hundred rows on
COPY_CHUNK = 1024 * 1024


@dataclass
class BulkPlan:
    """How to load one file set-based. All SQL reads the temporary table ``bulk_landing``."""

    #: the file's columns in file order, landed as text (names are SQL identifiers of your choice)
    landing_columns: Sequence[str]
    #: COPY options, e.g. ``format csv, header true, delimiter ';', encoding 'WIN1252'``
    copy_options: str
    #: SELECTs of (source_row, column_name, reason, value) — one per check, in the parser's check order
    checks: Sequence[str]
    #: raw table -> SELECT of the table's columns (source_row first, the scheme's order) from the landing table
    inserts: dict[str, str]
    #: bound parameters for checks and inserts (%(name)s placeholders)
    params: dict[str, Any] = field(default_factory=dict)
    #: Python run after COPY and before the checks (e.g. pseudonymise distinct values into a temp table)
    prepare: Callable[[psycopg.Connection], None] | None = None
    #: data lines the file has (physical lines after the header, none blank); None = count them here
    expected_rows: int | None = None


_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_SPECIAL = re.compile("[\\\\\t\n\r\x00]")


def copy_value(v) -> str:
    """One value in COPY text form (NUL dropped, as PostgreSQL text cannot hold it). The Python parsers'
    spool (trivsel.loading.parsing) and the plans' own COPYs use it."""
    if type(v) is str:  # the common case first; most values need no escaping at all
        return v.replace("\x00", "").translate(_ESCAPES) if _SPECIAL.search(v) else v
    if v is None:
        return "\\N"
    if isinstance(v, bool):
        return "t" if v else "f"
    if isinstance(v, (int, float, Decimal)):
        return str(v)
    if isinstance(v, (date, datetime)):
        return v.isoformat()
    return str(v).replace("\x00", "").translate(_ESCAPES)


class BulkFallback(Exception):
    """The file is not something COPY reads exactly as the parser does; use the Python parser."""


@dataclass
class BulkResult:
    rows: dict[str, int]
    issues: list[RowIssue]


def threshold() -> int | None:
    """Smallest file (bytes) that takes the bulk path; None = the bulk path is off."""
    value = os.environ.get("TRIVSEL_BULK_FROM_BYTES", "").strip().lower()
    if value in ("off", "never", "none"):
        return None
    return int(value) if value else DEFAULT_FROM_BYTES


def count_data_lines(path: Path) -> tuple[int, bool]:
    """(physical lines after the header, whether any line is empty). C-speed: counts newlines in chunks."""
    newlines = 0
    blank = False
    tail = b""
    last = b"\n"
    with path.open("rb") as fh:
        while chunk := fh.read(COPY_CHUNK):
            newlines += chunk.count(b"\n")
            window = tail + chunk
            if b"\n\n" in window or b"\n\r\n" in window:
                blank = True
            tail = chunk[-2:]
            last = chunk[-1:]
    lines = newlines + (0 if last == b"\n" else 1)  # a last line without a newline still counts
    return max(lines - 1, 0), blank


def _quiet_server_log(conn: psycopg.Connection) -> None:
    """A rejected COPY line must not reach the server log (its CONTEXT quotes the line, employee number
    included). The embedded server and docker-compose's are configured so (trivsel.warehouse.LOG_PRIVACY);
    on another server a superuser session sets it for this transaction (non-superusers cannot, see
    docs/operations.md)."""
    if conn.execute("select current_setting('is_superuser')").fetchone()[0] == "on":
        conn.execute("set local log_error_verbosity = terse")
        conn.execute("set local log_min_error_statement = panic")


def run(conn: psycopg.Connection, path: Path, scheme: Scheme, plan: BulkPlan, *, delivery_id: int,
        municipality_code: str, period: str, max_issues: int = 1000) -> BulkResult:
    """Land, check and insert inside the caller's transaction. Raises BulkFallback (nothing changed then:
    the work runs under a savepoint that is rolled back)."""
    expected = plan.expected_rows
    if expected is None:
        expected, blank = count_data_lines(path)
        if blank:
            raise BulkFallback("blank lines")
    cols = list(plan.landing_columns)
    try:
        with conn.transaction():  # a savepoint when the caller has a transaction open
            _quiet_server_log(conn)
            conn.execute(sql.SQL(
                "create temp table {} (source_row bigint generated always as identity (start with 2), {}) "
                "on commit drop").format(sql.Identifier(LANDING),
                                         sql.SQL(", ").join(sql.SQL("{} text").format(sql.Identifier(c))
                                                            for c in cols)))
            stmt = sql.SQL("copy {} ({}) from stdin with (" + plan.copy_options + ")").format(
                sql.Identifier(LANDING), sql.SQL(", ").join(map(sql.Identifier, cols)))
            with conn.cursor() as cur:
                with cur.copy(stmt) as copy, path.open("rb") as fh:
                    while chunk := fh.read(COPY_CHUNK):
                        copy.write(chunk)
                landed = cur.rowcount  # the server's "COPY n": no second scan of the landing table
            if landed != expected:
                # a quoted line break: COPY's record numbers are no longer the file's line numbers
                raise BulkFallback(f"{landed} records in {expected} lines")
            # Rows with nothing but blanks and separators are skipped, as the parsers skip them.
            conn.execute(sql.SQL("delete from {} where {}").format(
                sql.Identifier(LANDING), sql.SQL(" and ").join(
                    sql.SQL("coalesce(btrim({}, E' \\t\\r\\n'), '') = ''").format(sql.Identifier(c)) for c in cols)))
            if plan.prepare is not None:
                plan.prepare(conn)
            issues: list[RowIssue] = []
            if plan.checks:
                union = " union all ".join(
                    f"select {i} as check_order, q.* from ({check}) as q(source_row, column_name, reason, value)"
                    for i, check in enumerate(plan.checks))
                found = conn.execute(
                    f"select source_row, column_name, reason, value from ({union}) as issues "
                    f"order by source_row nulls first, check_order limit {int(max_issues)}",
                    plan.params).fetchall()
                issues = [RowIssue(r[0], r[1], r[2], None if r[3] is None else str(r[3])[:200]) for r in found]
            rows: dict[str, int] = {}
            if not issues:
                for table in scheme.tables:
                    select = plan.inserts.get(table.name)
                    if select is None:
                        rows[table.name] = 0
                        continue
                    target = [n for n, _ in LOAD_COLUMNS] + table.column_names
                    stmt = sql.SQL("insert into raw.{} ({}) select %(__did)s, %(__code)s, %(__period)s, q.* "
                                   "from (" + select + ") as q").format(
                        sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, target)))
                    cur = conn.execute(stmt, {**plan.params, "__did": delivery_id, "__code": municipality_code,
                                              "__period": period})
                    rows[table.name] = cur.rowcount
            conn.execute(sql.SQL("drop table {}").format(sql.Identifier(LANDING)))
            return BulkResult(rows, issues)
    except BulkFallback:
        raise
    except (psycopg.errors.DataError, psycopg.errors.BadCopyFileFormat,
            psycopg.errors.CharacterNotInRepertoire, psycopg.errors.UntranslatableCharacter) as exc:
        log.info("bulk path declined %s (%s): the Python parser takes it", path.name,
                 mask_identifiers(str(exc).splitlines()[0], keep=(path.name,)))
        raise BulkFallback(str(exc).splitlines()[0]) from exc
