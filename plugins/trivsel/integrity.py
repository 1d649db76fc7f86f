"""Fingerprints of warehouse tables: row count and an order-independent content hash per table.

Used to prove that re-running a period (or the whole backfill) leaves marts and reporting identical:
take `table_fingerprints(conn, ("marts", "reporting"))` before and after, and compare.

The hash is the md5 of the sorted md5s of every row's text form, computed inside PostgreSQL (no rows are
pulled into Python), so it does not depend on the physical row order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

DEFAULT_SCHEMAS = ("marts", "reporting", "person")

#: Run bookkeeping kept beside results (when, and by which run, a statistics scope was last computed): not
#: content, so not in a fingerprint; a re-run that recomputes the same scopes gives the same warehouse.
BOOKKEEPING_COLUMNS: dict[tuple[str, str], tuple[str, ...]] = {
    ("reporting", "stat_scope_state"): ("computed_at", "run_id"),
}

#: Whole tables that are a cache, not content: the statistics' per-delivery input hashes
#: (trivsel.stats.part_hash). Every use checks them against the facts' own row counters and rescans when in
#: doubt, and the facts they summarise (person.fct_*) are fingerprinted themselves. What the cache holds
#: depends on the path the warehouse took (a table edited behind the pipeline's back and put back leaves the
#: cache stale until its next use, which notices and rescans), so it cannot be part of "the same warehouse".
#: That the cache always gives a full scan's hashes is tests/certified/test_stat_part_hash.py's job.
BOOKKEEPING_TABLES: frozenset[tuple[str, str]] = frozenset({
    ("person", "stat_part_hash"),
    ("person", "stat_part_relation"),
    # the payroll employee test's per-half sums (trivsel.stats.absence_halves): a cache of the fact's rows,
    # with the time of its last update; a rebuilt and an updated one hold the same sums
    ("person", "stat_absence_half"),
    ("person", "stat_absence_half_month"),
    ("person", "stat_absence_half_municipality"),
})


@dataclass(frozen=True)
class Fingerprint:
    rows: int
    content_md5: str

    def __str__(self) -> str:
        return f"{self.rows} rows, md5 {self.content_md5}"


def relations(conn: psycopg.Connection, schemas: Iterable[str]) -> list[tuple[str, str]]:
    """(schema, name) of every table, view and materialized view in the given schemas, sorted."""
    return [(r[0], r[1]) for r in conn.cursor(row_factory=tuple_row).execute(
        """select n.nspname, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
            where n.nspname = any(%s) and c.relkind in ('r', 'p', 'v', 'm')
            order by n.nspname, c.relname""", (list(schemas),)).fetchall()]


def fingerprint(conn: psycopg.Connection, schema_name: str, table: str) -> Fingerprint:
    cur = conn.cursor(row_factory=tuple_row)
    skip = BOOKKEEPING_COLUMNS.get((schema_name, table))
    if skip:
        cols = [r[0] for r in cur.execute(
            "select column_name from information_schema.columns where table_schema = %s and table_name = %s"
            " and column_name <> all(%s) order by ordinal_position", (schema_name, table, list(skip))).fetchall()]
        row_text = sql.SQL("row({})::text").format(sql.SQL(", ").join(sql.Identifier("t", c) for c in cols))
    else:
        row_text = sql.SQL("t::text")
    row = cur.execute(sql.SQL(
        "select count(*), coalesce(md5(string_agg(h, '' order by h)), md5('')) "
        "from (select md5({}) as h from {}.{} t) s").format(
            row_text, sql.Identifier(schema_name), sql.Identifier(table))).fetchone()
    return Fingerprint(int(row[0]), str(row[1]))


def table_fingerprints(conn: psycopg.Connection, schemas: Iterable[str] = DEFAULT_SCHEMAS) -> dict[str, Fingerprint]:
    """{"schema.table": Fingerprint} for every relation in the schemas but the caches (BOOKKEEPING_TABLES)."""
    return {f"{s}.{t}": fingerprint(conn, s, t) for s, t in relations(conn, schemas)
            if (s, t) not in BOOKKEEPING_TABLES}


def differences(before: dict[str, Fingerprint], after: dict[str, Fingerprint]) -> list[str]:
    """Human-readable differences between two sets of fingerprints (empty = identical)."""
    out = []
    for name in sorted(set(before) | set(after)):
        b, a = before.get(name), after.get(name)
        if b != a:
            out.append(f"{name}: {b or 'missing'} -> {a or 'missing'}")
    return out
