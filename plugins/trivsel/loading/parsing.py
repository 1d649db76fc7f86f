"""Parsing: the reference path from a delivered file to raw, through the scheme's Python parser.

Rows are spooled in COPY text form (in memory up to a bound, on disk beyond it) and COPYed once per table,
with a parser's contract checked row by row and, for schemes that account for their rows, every row read
either loaded or rejected. Its own module because it is the path every scheme has; the set-based path
(trivsel.loading.bulk) is an optimisation for some schemes that falls back to this one.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable
from pathlib import Path

import psycopg
from psycopg import sql

from trivsel import schema
from trivsel.loading.archiving import COPY_CHUNK
from trivsel.privacy import describe_exception, mask_free_text
from trivsel.sources.base import DeliveryContext, FileRejected
from trivsel.sources.bulk import copy_value

log = logging.getLogger(__name__)

SPOOL_IN_MEMORY = 32 * 1024 * 1024
SPOOL_BATCH = 2000  # rows per write into the spool


class _ParserContractError(Exception):
    """A parser yielded something the scheme does not declare (a bug in the scheme module)."""


class _Spool:
    """Rows of one raw table in COPY text form, in memory up to a bound and on disk beyond it."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.fh = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY, mode="w+b")
        self.rows = 0
        self._lines: list[str] = []  # a few thousand lines, written to fh in one go (less per-row overhead)

    def add(self, row: Iterable) -> None:
        self._lines.append(self.prefix + "\t".join(map(copy_value, row)) + "\n")
        self.rows += 1
        if len(self._lines) >= SPOOL_BATCH:
            self._flush()

    def _flush(self) -> None:
        if self._lines:
            self.fh.write("".join(self._lines).encode("utf-8"))
            self._lines.clear()

    def chunks(self):
        self._flush()
        self.fh.seek(0)
        while chunk := self.fh.read(COPY_CHUNK):
            yield chunk

    def close(self) -> None:
        self.fh.close()


def _unaccounted(ctx: DeliveryContext, loaded: set[tuple[str, int]]) -> list[tuple]:
    """Rows read = rows in raw + rows quarantined. For a file without issues (one with issues is quarantined
    whole), a data row the parser read that is not in raw (or a row it yielded without reading it) is a
    parser bug, never a silent loss. check_name 'parser_error', so
    the next run takes the file again once the scheme is fixed."""
    lost = sorted(ctx.rows_read - loaded)
    unread = sorted(loaded - ctx.rows_read)
    out = [(row, None, "parser_error", f"{part} row {row} was read but neither loaded nor rejected "
                                       f"(a parser bug: rows read must equal rows in raw plus rows quarantined)",
            None) for part, row in lost[:100]]
    out += [(row, None, "parser_error", f"{part} row {row} was loaded but never read (a parser bug)", None)
            for part, row in unread[:100]]
    return out


def _load_parsed(conn, path: Path, module, ctx: DeliveryContext, did: int, reject, tables: list[str]):
    """The reference path: the scheme's Python parser, spooled in COPY text form, then one COPY per table.
    Returns the rows loaded, or the quarantine Outcome."""
    scheme = module.scheme
    code, period = ctx.municipality_code, ctx.period
    spools = {t.name: _Spool(f"{did}\t{code}\t{period}\t") for t in scheme.tables}
    widths = {t.name: len(t.columns) for t in scheme.tables}
    accounted: set[tuple[str, int]] | None = set() if scheme.accounts_rows else None
    part_at = {t.name: t.column_names.index(t.part_column) if t.part_column else None for t in scheme.tables}
    try:
        try:
            for table, row in module.parse(path, ctx):
                if table not in spools or len(row) != widths[table]:
                    raise _ParserContractError(
                        f"parser yielded a row for {table!r} with {len(row)} values; the scheme declares "
                        + (f"{widths[table]} columns" if table in widths else f"the tables {tables}"))
                spools[table].add(row)
                if accounted is not None:
                    i = part_at[table]
                    accounted.add((table if i is None else row[i], row[0]))
        except FileRejected as exc:
            return reject([(exc.row, exc.column, "parse", exc.reason, None)], tables)
        except Exception as exc:  # noqa: BLE001 - any parser failure quarantines the file, never loses it
            # A parser bug or a file shape nobody foresaw (csv.Error, zipfile.BadZipFile, InvalidOperation,
            # RecursionError, ...): still a clear quarantine. check_name 'parser_error' lets the next run try
            # the same file again (after a fix) instead of calling it unchanged.
            log.error("parser %s failed on %s: %s", scheme.name, path.name,
                      describe_exception(exc, keep=(path.name,)))
            return reject([(None, None, "parser_error", f"unreadable as {scheme.name}: {type(exc).__name__}: "
                                                         f"{str(exc)[:300]}", None)], tables)
        if accounted is not None and not ctx.issues:  # with issues, the whole file is quarantined anyway
            lost = _unaccounted(ctx, accounted)
            if lost:
                return reject(lost, tables)
        if ctx.issues:
            return reject([(i.row, i.column, "parse", i.reason, i.value) for i in ctx.issues], tables)
        total = sum(s.rows for s in spools.values())
        if total == 0:
            return reject([(None, None, "parse", "the file has no data rows", None)], tables)
        try:
            with conn.transaction():
                for t in scheme.tables:
                    spool = spools[t.name]
                    if not spool.rows:
                        continue
                    cols = [n for n, _ in schema.LOAD_COLUMNS] + t.column_names
                    stmt = sql.SQL("copy raw.{} ({}) from stdin").format(
                        sql.Identifier(t.name), sql.SQL(", ").join(map(sql.Identifier, cols)))
                    with conn.cursor() as cur, cur.copy(stmt) as copy:
                        for chunk in spool.chunks():
                            copy.write(chunk)
                    if t.free_text_columns:  # before the commit: no other session sees them clear
                        mask_free_text(conn, t.name, t.free_text_columns, did)
        except psycopg.errors.DataError as exc:
            return reject([(None, None, "copy", f"a value does not fit its column: "
                                                 f"{str(exc).splitlines()[0]}", None)], tables)
    finally:
        for s in spools.values():
            s.close()

    return total

