"""One run's model build at a time: the build lease in the warehouse (audit.build_lease).

Why. Two runs of one period (a scheduled run and a hand-started `trivsel run`, or two by hand) serialise their
loads on the period lock, but their dbt phases would otherwise interleave: run B's `dbt_staging` rebuilds views
and tables while run A's mart tasks read them, and both certify into certified_next at once. A session-level
advisory lock cannot span the phase: it is taken in the gate task and released in another task, in another
process. A row in the warehouse can.

How. `acquire` is called at the gate (pipeline.loads_done) *before* the run pins its snapshot, so a run that
waited pins what the first run loaded. It takes the one lease row (`select ... for update`) and holds it when
the row is free, expired, or already its own (a retried gate of the same run id refreshes it: idempotent).
Otherwise it logs "waiting for run X's model build" and polls. `release` is called by run_outcome (trigger rule
all_done: it runs however the run went) and by certify's refusal path. A run that crashed holds the lease until
it expires (settings.build_lease_minutes in config/municipalities.yml, default 120); each acquisition and
release is kept in audit.build_lease_history, so an operator (and the concurrency test) can see who built when.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

import psycopg

log = logging.getLogger(__name__)

DEFAULT_TTL_MINUTES = 120
DEFAULT_POLL_SECONDS = 10.0


class LeaseTimeout(RuntimeError):
    """The lease stayed with another run for longer than the caller would wait."""


def ttl_minutes() -> float:
    """settings.build_lease_minutes of config/municipalities.yml (default 120)."""
    from trivsel.config import load_config

    value = load_config().settings.get("build_lease_minutes", DEFAULT_TTL_MINUTES)
    minutes = float(value)
    if minutes <= 0:
        raise ValueError(f"settings.build_lease_minutes must be positive, not {value!r}")
    return minutes


def try_acquire(conn: psycopg.Connection, run_id: str, ttl: float) -> tuple[bool, str | None, datetime | None]:
    """One attempt: (held, holder, expires_at). Held when the lease was free, expired or already this run's."""
    with conn.transaction():
        conn.execute("insert into audit.build_lease (lease) values (true) on conflict do nothing")
        holder, expires_at, expired = conn.execute(
            "select holder_run_id, expires_at, expires_at <= now() from audit.build_lease where lease for update"
        ).fetchone()
        if holder is not None and holder != run_id and not expired:
            return False, holder, expires_at
        if holder is not None and holder != run_id:
            log.warning("build lease: run %s's lease expired at %s (a crashed run?); run %s takes it",
                        holder, expires_at, run_id)
            conn.execute("update audit.build_lease_history set released_at = %s, released_by = 'expired'"
                         " where run_id = %s and released_at is null", (expires_at, holder))
        refresh = holder == run_id
        conn.execute(
            """update audit.build_lease
                  set holder_run_id = %s,
                      acquired_at = case when %s then acquired_at else now() end,
                      expires_at = now() + make_interval(secs => %s)
                where lease""", (run_id, refresh, ttl * 60))
        if not refresh:
            conn.execute("insert into audit.build_lease_history (run_id) values (%s)", (run_id,))
        return True, run_id, None


def acquire(conn: psycopg.Connection, run_id: str, ttl: float | None = None,
            poll_seconds: float | None = None, timeout: float | None = None) -> float:
    """Wait until this run holds the build lease; return the seconds waited. `conn` must be autocommit.
    ttl (minutes) defaults to settings.build_lease_minutes, poll_seconds to DEFAULT_POLL_SECONDS."""
    ttl = ttl_minutes() if ttl is None else ttl
    poll_seconds = DEFAULT_POLL_SECONDS if poll_seconds is None else poll_seconds
    started = time.monotonic()
    last_holder = None
    while True:
        held, holder, expires_at = try_acquire(conn, run_id, ttl)
        waited = time.monotonic() - started
        if held:
            log.info("build lease: run %s holds the model build (after %.0f s waiting; expires in %g min)",
                     run_id, waited, ttl)
            return waited
        if timeout is not None and waited >= timeout:
            raise LeaseTimeout(f"run {run_id}: run {holder}'s model build still holds the build lease "
                               f"(expires at {expires_at}) after {waited:.0f} s")
        if holder != last_holder:
            log.info("build lease: run %s is waiting for run %s's model build (its lease expires at %s)",
                     run_id, holder, expires_at)
            last_holder = holder
        time.sleep(poll_seconds)


def release(conn: psycopg.Connection, run_id: str, how: str = "released") -> bool:
    """Give the lease up if this run holds it (True); a no-op otherwise (released already, or expired and
    taken by another run)."""
    with conn.transaction():
        cur = conn.execute("update audit.build_lease set holder_run_id = null, acquired_at = null,"
                           " expires_at = null where lease and holder_run_id = %s", (run_id,))
        released = cur.rowcount == 1
        if released:
            conn.execute("update audit.build_lease_history set released_at = now(), released_by = %s"
                         " where run_id = %s and released_at is null", (how, run_id))
    if released:
        log.info("build lease: run %s released the model build (%s)", run_id, how)
    return released


def holder(conn: psycopg.Connection) -> tuple[str | None, datetime | None]:
    """(holder run id, expires_at) of the lease now, (None, None) when free."""
    row = conn.execute("select holder_run_id, expires_at from audit.build_lease where lease").fetchone()
    return (row[0], row[1]) if row else (None, None)
