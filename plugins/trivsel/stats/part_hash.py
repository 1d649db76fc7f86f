"""A statistic's input hash per scope, kept per delivery: the fingerprint scan of a relation that grows with
the history reads only the deliveries that are new since the last run (trivsel.stats.scope_state).

Why: scope_state hashed every row of person.fct_absence_employee_month and person.fct_survey_answer on every
run, so the cost of "did this municipality's input change?" grew with the history (13 months of payroll in
month 13, 121 in month 121) even for a municipality that delivered nothing. Those relations are incremental
by delivery (dbt's incremental_by_delivery_config): every row carries the delivery_id it came from, a
delivery's rows are written together and only ever replaced whole (deleted, then inserted again under a new
reference_fingerprint), and the relation has an index on delivery_id.

A part's hash per scope is (rows, sum of hash 0, sum of hash 1) over its rows: sums, so the hash of a scope is
the sum of its deliveries' hashes. This module keeps each delivery's sums in person.stat_part_hash (in
`person`, which only the transformer reads: they are sums over person-level rows) and adds them up: the same
'rows:hash0:hash1' text, digit for digit, as the full scan (`scope_state.scan_hashes`), so a stored
fingerprint stays valid when a warehouse switches from one to the other. A run
  1. lists the relation's (delivery_id, reference_fingerprint) pairs by a loose index scan (one index probe
     per delivery, not a read of its rows);
  2. hashes only the rows of the pairs it has not hashed yet (an index scan of those deliveries), and
     forgets the pairs that are gone;
  3. sums the cached sums per scope.

The cache is trusted only while nothing but whole deliveries came and went, which the relation's own
counters prove (pg_stat: rows inserted, updated, deleted, with the current transaction's): since the last
run the relation is the same one (oid and relfilenode: a dbt full refresh or a truncate makes a new one), no
row was updated, and exactly the rows of the new deliveries were inserted and those of the vanished ones
deleted. Anything else (an edit in place, a partial delete, a rolled-back load, a reset of the statistics,
track_counts off, no delivery_id index) falls back to hashing every row, as before, and starts the cache
again from that scan. So the cache can make a run cheaper, never a fingerprint different.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass

from psycopg import errors, sql
from psycopg.rows import tuple_row

log = logging.getLogger(__name__)

SCHEMA = "person"
HASH_TABLE = f"{SCHEMA}.stat_part_hash"
RELATION_TABLE = f"{SCHEMA}.stat_part_relation"
DDL = (
    f"""create table if not exists {RELATION_TABLE} (
        part text primary key,           -- md5 of the part's definition (relation, columns, condition)
        relation text not null,
        relation_key text not null,      -- oid:relfilenode when hashed: a rebuilt relation has another
        n_inserted bigint not null,      -- the relation's pg_stat counters when hashed
        n_updated bigint not null,
        n_deleted bigint not null,
        hashed_at timestamptz not null
    )""",
    # one row per (delivery, scope) with rows counted; scope null: the delivery's own row, with all its rows
    # (n_all, for the counters' check) and nothing counted
    f"""create table if not exists {HASH_TABLE} (
        part text not null,
        delivery_id bigint not null,
        reference_fingerprint text,
        scope text,
        n bigint not null,
        h0 numeric not null,
        h1 numeric not null
    )""",
    f"create index if not exists stat_part_hash_part_idx on {HASH_TABLE} (part, delivery_id)",
)


@dataclass(frozen=True)
class Counters:
    relation_key: str
    inserted: int
    updated: int
    deleted: int


@dataclass
class Outcome:
    """What the last `cached_hashes` did (for the log and the tests): 'cached' or why it scanned everything."""
    how: str = ""
    hashed_deliveries: int = 0
    forgotten_deliveries: int = 0


#: the outcome of the last call, per part key
LAST: dict[str, Outcome] = {}


def part_key(relation: str, columns: list[str], where: str, params: dict) -> str:
    text = json.dumps({"relation": relation, "columns": columns, "where": where, "params": params},
                      sort_keys=True, default=str)
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def ensure(conn) -> None:
    """Create the cache tables (as the transformer, who owns `person`). The statistics tasks run at once: a
    second creator waits for the first's commit and finds them made."""
    with conn.cursor(row_factory=tuple_row) as cur:
        cur.execute("select to_regclass(%s) is not null and to_regclass(%s) is not null",
                    (HASH_TABLE, RELATION_TABLE))
        if cur.fetchone()[0]:
            return
        try:
            with conn.transaction():
                cur.execute(f"create schema if not exists {SCHEMA}")
                for ddl in DDL:
                    cur.execute(ddl)
        except (errors.UniqueViolation, errors.DuplicateTable, errors.DuplicateSchema, errors.DuplicateObject):
            log.info("%s: created by another statistics task at the same moment", HASH_TABLE)


def usable(conn, relation: str, delivery_column: str, fingerprint_column: str, present: set[str]) -> str:
    """'' when the relation can be hashed per delivery, else why not."""
    if delivery_column not in present or fingerprint_column not in present:
        return f"no {delivery_column}/{fingerprint_column} column"
    with conn.cursor(row_factory=tuple_row) as cur:
        cur.execute("select current_setting('track_counts')::bool")
        if not cur.fetchone()[0]:
            return "track_counts is off"
        cur.execute("""select exists (select 1 from pg_index i join pg_attribute a on a.attrelid = i.indrelid
                                      and a.attnum = i.indkey[0]
                        where i.indrelid = to_regclass(%s) and a.attname = %s and i.indpred is null)""",
                    (relation, delivery_column))
        if not cur.fetchone()[0]:
            return f"no index on {delivery_column}"
        cur.execute(sql.SQL("select exists (select 1 from {} where {} is null)").format(
            sql.Identifier(*relation.split(".", 1)), sql.Identifier(delivery_column)))
        if cur.fetchone()[0]:
            return f"rows without a {delivery_column}"
    return ""


def counters(cur, relation: str) -> Counters:
    """The relation's identity and its cumulative row counters, this transaction's own included."""
    cur.execute("""select c.oid::text || ':' || c.relfilenode::text,
                          pg_stat_get_tuples_inserted(c.oid) + pg_stat_get_xact_tuples_inserted(c.oid),
                          pg_stat_get_tuples_updated(c.oid) + pg_stat_get_xact_tuples_updated(c.oid),
                          pg_stat_get_tuples_deleted(c.oid) + pg_stat_get_xact_tuples_deleted(c.oid)
                     from pg_class c where c.oid = to_regclass(%s)""", (relation,))
    key, ins, upd, dele = cur.fetchone()
    return Counters(key, int(ins), int(upd), int(dele))


def _present(cur, rel: sql.Composable, delivery: sql.Identifier, fingerprint: sql.Identifier) -> dict[int, str | None]:
    """delivery_id -> reference_fingerprint of the relation, by a loose index scan (as dbt's
    delivery_fingerprints macro)."""
    cur.execute(sql.SQL("""
        with recursive ids as (
            select min({d}) as id from {rel}
            union all
            select (select min(n.{d}) from {rel} as n where n.{d} > ids.id) from ids where ids.id is not null
        )
        select ids.id, (select r.{f} from {rel} as r where r.{d} = ids.id limit 1) from ids
        where ids.id is not null""").format(d=delivery, f=fingerprint, rel=rel))
    return {int(i): f for i, f in cur.fetchall()}


def _hash_deliveries(cur, key: str, rel: sql.Composable, row: sql.Composable, scope: sql.Identifier,
                     delivery: sql.Identifier, fingerprint: sql.Identifier, where: str, params: dict,
                     ids: list[int] | None) -> None:
    """Insert the per-(delivery, scope) sums of the deliveries `ids` (None: every delivery) into the cache, and
    each delivery's own row with all its rows counted (n_all). The sums are of the same expressions as the
    full scan's."""
    only = sql.SQL("{} is not null").format(delivery) if ids is None else sql.SQL("{} = any(%(ids)s)").format(delivery)
    cur.execute(sql.SQL("""
        insert into {cache} (part, delivery_id, reference_fingerprint, scope, n, h0, h1)
        with hashed as (
            select {d} as delivery_id, {f}::text as reference_fingerprint, {s}::text as scope,
                   ({where}) as counted,
                   case when ({where}) then hashtextextended({row}, 0)::numeric end as h0,
                   case when ({where}) then hashtextextended({row}, 1)::numeric end as h1
            from {rel} where {only}
        )
        select %(part)s, delivery_id, min(reference_fingerprint),
               case when grouping(scope) = 1 then null else scope end,
               case when grouping(scope) = 1 then count(*) else count(*) filter (where counted) end,
               case when grouping(scope) = 1 then 0 else coalesce(sum(h0), 0) end,
               case when grouping(scope) = 1 then 0 else coalesce(sum(h1), 0) end
        from hashed
        group by grouping sets ((delivery_id), (delivery_id, scope))
        having grouping(scope) = 1 or count(*) filter (where counted) > 0""").format(
        cache=sql.SQL(HASH_TABLE), d=delivery, f=fingerprint, s=scope, row=row, rel=rel, only=only,
        where=sql.SQL(where)), {**params, "part": key, "ids": ids or []})


def cached_hashes(conn, relation: str, columns: list[str], where: str, params: dict, scope_column: str,
                  delivery_column: str, fingerprint_column: str, row: sql.Composable,
                  rescan: bool = False) -> dict[str, str]:
    """scope -> 'rows:hash0:hash1', as scope_state.scan_hashes gives it, from the per-delivery cache
    (`rescan`: from a scan of every row, which the cache then starts again from)."""
    ensure(conn)
    key = part_key(relation, columns, where, dict(params))
    schema, name = relation.split(".", 1)
    rel = sql.Identifier(schema, name)
    d, f, s = sql.Identifier(delivery_column), sql.Identifier(fingerprint_column), sql.Identifier(scope_column)
    outcome = Outcome()
    with conn.transaction(), conn.cursor(row_factory=tuple_row) as cur:
        cur.execute("select pg_advisory_xact_lock(hashtext('trivsel:stat_part_hash:' || %s))", (key,))
        cur.execute("select pg_stat_clear_snapshot()")  # the counters as they are now, not as first read
        now = counters(cur, relation)
        cur.execute(f"select relation_key, n_inserted, n_updated, n_deleted from {RELATION_TABLE} where part = %s",
                    (key,))
        stored = cur.fetchone()
        present = _present(cur, rel, d, f)
        cur.execute(f"select delivery_id, reference_fingerprint, n from {HASH_TABLE}"
                    " where part = %s and scope is null", (key,))
        cached = {int(i): (fp, int(n)) for i, fp, n in cur.fetchall()}
        gone = [i for i, (fp, _) in cached.items() if present.get(i, object()) != fp]
        new = sorted(i for i, fp in present.items() if i not in cached or cached[i][0] != fp)
        trusted = ""
        if rescan:
            trusted = "asked for"
        elif stored is None:
            trusted = "first run"
        elif stored[0] != now.relation_key:
            trusted = "the relation was rebuilt"
        elif now.updated != stored[2]:
            trusted = "rows were updated in place"
        elif now.deleted - stored[3] != sum(cached[i][1] for i in gone):
            trusted = "rows were deleted other than whole deliveries"
        if trusted:
            cur.execute(f"delete from {HASH_TABLE} where part = %s", (key,))
            _hash_deliveries(cur, key, rel, row, s, d, f, where, params, None)
            outcome.how, outcome.hashed_deliveries = f"full scan ({trusted})", len(present)
        else:
            if gone:
                cur.execute(f"delete from {HASH_TABLE} where part = %s and delivery_id = any(%s)", (key, gone))
            if new:
                _hash_deliveries(cur, key, rel, row, s, d, f, where, params, new)
            cur.execute(f"select coalesce(sum(n), 0) from {HASH_TABLE} where part = %s and scope is null"
                        " and delivery_id = any(%s)", (key, new))
            inserted = int(cur.fetchone()[0])
            if now.inserted - stored[1] != inserted:
                # rows came other than as whole new deliveries (or a rolled-back load counted): rescan
                cur.execute(f"delete from {HASH_TABLE} where part = %s", (key,))
                _hash_deliveries(cur, key, rel, row, s, d, f, where, params, None)
                outcome.how, outcome.hashed_deliveries = ("full scan (rows were inserted other than whole "
                                                          "deliveries)", len(present))
            else:
                outcome.how, outcome.hashed_deliveries, outcome.forgotten_deliveries = "cached", len(new), len(gone)
        cur.execute(f"""insert into {RELATION_TABLE} (part, relation, relation_key, n_inserted, n_updated,
                            n_deleted, hashed_at) values (%s, %s, %s, %s, %s, %s, clock_timestamp())
                        on conflict (part) do update set relation_key = excluded.relation_key,
                            n_inserted = excluded.n_inserted, n_updated = excluded.n_updated,
                            n_deleted = excluded.n_deleted, hashed_at = excluded.hashed_at""",
                    (key, relation, now.relation_key, now.inserted, now.updated, now.deleted))
        cur.execute(f"""select scope, sum(n)::text || ':' || sum(h0)::text || ':' || sum(h1)::text
                          from {HASH_TABLE} where part = %s and scope is not null group by scope""", (key,))
        result = {r[0]: r[1] for r in cur.fetchall()}
    LAST[relation] = outcome
    log.info("input hash of %s: %s, %d deliveries hashed, %d forgotten", relation, outcome.how,
             outcome.hashed_deliveries, outcome.forgotten_deliveries)
    return result
