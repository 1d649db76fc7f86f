"""One run, one set of deliveries: the snapshot a run pins at its gate and builds every model from.

Why. Staging models are live views over raw and audit.delivery, and Cosmos builds one model per task. A
delivery committed while a run's dbt tasks are under way (a `trivsel load`, another run's ingest, a remote
pull) would be read by the models built after it and not by those built before it: marts built from
different sets of deliveries, published as one certified version.

How. At the run's gate (`loads_done`, after every ingest of the run) `pin(run_id)` copies the status of every
delivery into `audit.run_snapshot` in one statement (one MVCC snapshot: a load still in its transaction is
not seen, a committed one is). The DAG passes the run id to every dbt task as dbt var `run_id`; the macro
`pinned_deliveries()` (dbt/macros/pinned_deliveries.sql) then reads deliveries from the run's snapshot instead
of audit.delivery, in staging (`loaded_rows`, `stg_audit__delivery`) and in the incremental absence chain.
A delivery committed after the pin is not in it: the next run pins it. Without the var (`trivsel dbt`,
tests) the models read audit.delivery live; a view built by a run keeps that run's pin until it is rebuilt, so
a `trivsel dbt build` outside a run selects the staging views with the models that read them
(docs/certification.md).

The quality gate holds a delivery by setting it `waiting` in audit.delivery *and* in the run's snapshot
(`hold`), so the held rows leave this run's models too.
"""

from __future__ import annotations

import logging

import psycopg

log = logging.getLogger(__name__)


def pin(conn: psycopg.Connection, run_id: str) -> dict[str, int]:
    """Pin the run's snapshot (idempotent: a retried gate keeps the first pin). Returns its counts."""
    with conn.transaction():
        # Two tries of one gate never pin twice. The copy below is one statement: it sees one committed state
        # of audit.delivery (a loader's decision transaction is in it entirely or not at all).
        conn.execute("select pg_advisory_xact_lock(hashtext('trivsel:snapshot:' || %s))", (run_id,))
        row = conn.execute("select deliveries, loaded from audit.run_pin where run_id = %s", (run_id,)).fetchone()
        if row:
            log.info("run %s: snapshot already pinned (%d deliveries, %d loaded)", run_id, *row)
            return {"deliveries": row[0], "loaded": row[1], "already_pinned": 1}
        conn.execute("insert into audit.run_pin (run_id, deliveries, loaded) values (%s, 0, 0)", (run_id,))
        conn.execute(
            """insert into audit.run_snapshot (run_id, delivery_id, status, reason, decided_at)
               select %s, delivery_id, status, reason, decided_at from audit.delivery""", (run_id,))
        deliveries, loaded = conn.execute(
            "select count(*), count(*) filter (where status = 'loaded') from audit.run_snapshot where run_id = %s",
            (run_id,)).fetchone()
        conn.execute("update audit.run_pin set deliveries = %s, loaded = %s where run_id = %s",
                     (deliveries, loaded, run_id))
    log.info("run %s: snapshot pinned: %d deliveries, %d loaded; deliveries committed from now on are for the "
             "next run", run_id, deliveries, loaded)
    return {"deliveries": deliveries, "loaded": loaded}


def is_pinned(conn: psycopg.Connection, run_id: str | None) -> bool:
    return bool(run_id) and conn.execute("select 1 from audit.run_pin where run_id = %s",
                                         (run_id,)).fetchone() is not None


def hold(conn: psycopg.Connection, run_id: str | None, delivery_id: int, reason: str) -> None:
    """Mark a held delivery `waiting` in the run's snapshot as well (a no-op when the run did not pin)."""
    if run_id:
        conn.execute("update audit.run_snapshot set status = 'waiting', reason = %s, decided_at = now()"
                     " where run_id = %s and delivery_id = %s and status = 'loaded'", (reason, run_id, delivery_id))


def loaded_ids(conn: psycopg.Connection, run_id: str) -> set[int]:
    """The deliveries the run's models read (loaded in its snapshot)."""
    return {r[0] for r in conn.execute(
        "select delivery_id from audit.run_snapshot where run_id = %s and status = 'loaded'", (run_id,))}


def prune(conn: psycopg.Connection, keep: int = 50) -> int:
    """Drop the snapshots of all but the newest `keep` runs (audit.dbt_result is kept)."""
    cur = conn.execute(
        "delete from audit.run_pin where run_id not in (select run_id from audit.run_pin order by pinned_at desc"
        " limit %s)", (keep,))
    return cur.rowcount
