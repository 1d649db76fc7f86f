"""Which scopes of a statistic a run recomputes: input fingerprints per (domain, scope), kept in
reporting.stat_scope_state.

Why: every statistic used to recompute every municipality every month, so the cost of a run grew with the
history and with the number of municipalities, not with what the run delivered (the national month 13 cost
3.6× month 1). A scope's results depend only on the rows it reads and on the settings, so a run fingerprints
those per scope, in SQL, and recomputes a scope only when its fingerprint differs from the stored one:

- a part's hash per scope is computed in the database over exactly the columns the statistic reads
  (count and two order-independent 64-bit hash sums of the rows: no sort, one scan), so a municipality that
  delivered nothing new hashes the same and costs nothing but that scan;
- the fingerprint adds the domain, a code version constant (bump it when a module's results change for the
  same input) and every setting that changes the results, so a changed setting recomputes every scope;
- a pooled scope ('ALL') takes its members' fingerprints (`pooled`): it changes whenever one of them does.

`write` replaces the recomputed scopes' rows (delete + COPY) of every table of the domain, deletes the rows
of scopes that disappeared and updates the state, all in one transaction: the results and their
fingerprints never disagree. A first run, a table of another shape, or `full=True` recomputes everything
(the reference the tests compare the incremental path with).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from psycopg import errors, sql

from trivsel.stats import part_hash, reporting_table

log = logging.getLogger(__name__)

STATE_TABLE = "reporting.stat_scope_state"
STATE_DDL = f"""
    create table if not exists {STATE_TABLE} (
        domain text not null,
        scope text not null,
        fingerprint text not null,
        computed_at timestamptz not null,
        run_id text,
        primary key (domain, scope)
    )
"""


@dataclass(frozen=True)
class Part:
    """One relation a statistic reads: its columns that feed the results, the rows that count (`where`, a
    constant SQL condition) and the column naming the scope."""
    relation: str
    columns: tuple[str, ...]
    where: str = "true"
    scope_column: str = "municipality_code"
    params: Mapping[str, object] = field(default_factory=dict)
    #: set for a relation that is incremental by delivery (dbt's incremental_by_delivery_config): its hash is
    #: kept per delivery (trivsel.stats.part_hash), so a run hashes only the deliveries new since the last
    delivery_column: str | None = None
    fingerprint_column: str = "reference_fingerprint"


def _exists(cur, relation: str) -> bool:
    cur.execute("select to_regclass(%s) is not null", (relation,))
    row = cur.fetchone()
    return bool(row[0] if not isinstance(row, dict) else next(iter(row.values())))


def part_hashes(conn, part: Part, rescan: bool = False) -> dict[str, str]:
    """scope -> 'rows:hash0:hash1' of the part's rows (only the listed columns the relation has); {} when the
    relation does not exist. Order-independent: the same rows give the same hash however they are stored.
    A part kept per delivery gives the same text from its cache (trivsel.stats.part_hash) when it can
    (`rescan`: from a scan of every row, as a full recompute asks)."""
    with conn.cursor() as cur:
        if not _exists(cur, part.relation):
            return {}
        schema, name = part.relation.split(".", 1)
        cur.execute("select column_name::text from information_schema.columns where table_schema = %s"
                    " and table_name = %s", (schema, name))
        present = {(r[0] if not isinstance(r, dict) else next(iter(r.values()))) for r in cur.fetchall()}
    columns = [c for c in part.columns if c in present]
    row = sql.SQL("row({})::text").format(sql.SQL(", ").join(sql.Identifier(c) for c in columns))
    if part.delivery_column is not None:
        why_not = part_hash.usable(conn, part.relation, part.delivery_column, part.fingerprint_column, present)
        if not why_not:
            return part_hash.cached_hashes(conn, part.relation, columns, part.where, dict(part.params),
                                           part.scope_column, part.delivery_column, part.fingerprint_column, row,
                                           rescan=rescan)
        log.info("input hash of %s: every row (%s)", part.relation, why_not)
    return scan_hashes(conn, part, row)


def scan_hashes(conn, part: Part, row: sql.Composable) -> dict[str, str]:
    """The part's hash per scope from a scan of every row it counts."""
    schema, name = part.relation.split(".", 1)
    query = sql.SQL(
        "select {scope}::text, count(*)::text || ':' || sum(hashtextextended({row}, 0)::numeric)::text"
        " || ':' || sum(hashtextextended({row}, 1)::numeric)::text"
        " from {rel} where {where} group by 1").format(
        scope=sql.Identifier(part.scope_column), row=row, rel=sql.Identifier(schema, name),
        where=sql.SQL(part.where))
    with conn.cursor() as cur:
        cur.execute(query, dict(part.params))
        return {tuple(r.values())[0] if isinstance(r, dict) else r[0]:
                tuple(r.values())[1] if isinstance(r, dict) else r[1] for r in cur.fetchall()}


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def fingerprints(conn, domain: str, version: str, settings: Mapping[str, object], parts: Sequence[Part],
                 scopes_from: Sequence[int] | None = None, rescan: bool = False,
                 hashes_out: list[dict[str, str]] | None = None) -> dict[str, str]:
    """scope -> fingerprint, for every scope that the parts `scopes_from` (indices; default all) have rows for
    (`rescan`: every part hashed from all its rows, not from a per-delivery cache: a full recompute).
    `hashes_out`, when given, receives each part's hashes per scope (a statistic that keeps state of its own
    checks it against them, trivsel.stats.absence_halves)."""
    hashes = [part_hashes(conn, p, rescan) for p in parts]
    if hashes_out is not None:
        hashes_out.extend(hashes)
    chosen = [hashes[i] for i in (range(len(parts)) if scopes_from is None else scopes_from)]
    scopes = sorted(set().union(*chosen)) if chosen else []
    common = json.dumps({"domain": domain, "version": version, "settings": settings}, sort_keys=True,
                        default=str)
    return {s: _md5(common + "|" + "|".join(h.get(s, "-") for h in hashes)) for s in scopes}


def pooled(members: Mapping[str, str]) -> str:
    """The fingerprint of a pooled scope: of all its members' (changes when any member's does)."""
    return _md5("pooled|" + "|".join(f"{s}={fp}" for s, fp in sorted(members.items())))


def ensure(conn) -> None:
    """Create reporting.stat_scope_state where the statistics create their tables (by the transformer, so it
    is owned and granted as its reporting neighbours). The domains' tasks run at once: on a first run two may
    create it together, and the second then finds it made (after waiting for the first's commit)."""
    with conn.cursor() as cur:
        if _exists(cur, STATE_TABLE):
            return
        try:
            with conn.transaction():  # a savepoint inside the caller's transaction
                cur.execute("create schema if not exists reporting")
                cur.execute(STATE_DDL)
        except (errors.UniqueViolation, errors.DuplicateTable, errors.DuplicateSchema):
            log.info("%s: created by another statistics task at the same moment", STATE_TABLE)


@dataclass(frozen=True)
class Plan:
    domain: str
    fingerprints: dict[str, str]
    recompute: tuple[str, ...]
    full: bool

    def needs(self, scope: str) -> bool:
        return self.full or scope in self.recompute


def plan(conn, domain: str, prints: Mapping[str, str], tables: Iterable[tuple[str, type]],
         full: bool = False) -> Plan:
    """The scopes to recompute: those whose fingerprint is not the stored one. Everything when `full`, on a
    first run (no state for the domain) or when a table is missing or of another shape."""
    ensure(conn)
    with conn.cursor() as cur:
        cur.execute(f"select scope, fingerprint from {STATE_TABLE} where domain = %s", (domain,))
        stored = {tuple(r.values())[0] if isinstance(r, dict) else r[0]:
                  tuple(r.values())[1] if isinstance(r, dict) else r[1] for r in cur.fetchall()}
    full = full or not stored or not all(reporting_table.has_shape(conn, t, rt) for t, rt in tables)
    recompute = tuple(sorted(prints)) if full else tuple(sorted(s for s, fp in prints.items()
                                                                 if stored.get(s) != fp))
    return Plan(domain, dict(prints), recompute, full)


@dataclass
class Output:
    """One reporting table of a domain and the recomputed scopes' rows for it."""
    table: str
    record_type: type
    records: Iterable
    column_types: dict[str, str]
    primary_key: Sequence[str]
    scope_column: str = "municipality_code"


def write(conn, p: Plan, outputs: Sequence[Output], run_id: str | None = None) -> list[int]:
    """Replace the recomputed scopes' rows of every output, drop the disappeared scopes' rows and store the
    fingerprints, in one transaction. Returns the rows written per output."""
    current = list(p.fingerprints)
    ensure(conn)
    with conn.transaction(), conn.cursor() as cur:
        written = [reporting_table.replace_scopes(cur, o.table, o.record_type, o.records, o.column_types,
                                                  o.primary_key, o.scope_column,
                                                  None if p.full else p.recompute, current) for o in outputs]
        if p.full:
            cur.execute(f"delete from {STATE_TABLE} where domain = %s", (p.domain,))
        else:
            cur.execute(f"delete from {STATE_TABLE} where domain = %s and not (scope = any(%s))",
                        (p.domain, current))
        cur.executemany(f"insert into {STATE_TABLE} (domain, scope, fingerprint, computed_at, run_id)"
                        " values (%s, %s, %s, clock_timestamp(), %s) on conflict (domain, scope) do update"
                        " set fingerprint = excluded.fingerprint, computed_at = excluded.computed_at,"
                        " run_id = excluded.run_id",
                        [(p.domain, scope, p.fingerprints[scope], run_id) for scope in p.recompute])
    log.info("recomputed %d of %d scopes (%s)%s", len(p.recompute), len(p.fingerprints), p.domain,
             " (full)" if p.full else "")
    return written
