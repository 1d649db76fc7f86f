"""Validating: the run's loaded deliveries checked together, each raw table once, then decided one by one.

Why its own job: Great Expectations costs about 0.1 s of fixed Python per validation, and a national month
has about 400 deliveries. trivsel.validation.validate_batch runs each table's suite once over all of a batch's
deliveries, grouped by delivery_id, so the verdict (quarantine with its reasons) stays per delivery.

Two callers: ingest_municipality (validate=True: the CLI `trivsel load`, tests, the bench's history), which
validates its own municipality's period at once; and the DAG's single `validate` task (validate_run), which
validates every delivery the run's ingest tasks left `validating`, for all municipalities at once.
"""

from __future__ import annotations

import logging
import time
from contextlib import ExitStack
from dataclasses import dataclass

import psycopg
from psycopg import sql

from trivsel import schema, warehouse
from trivsel.config import Config, Municipality, load_config
from trivsel.loading.decision import AWAITING_VALIDATE, _quarantine, decide, readable_issues, reevaluate
from trivsel.loading.discovery import period_lock
from trivsel.loading.outcome import Outcome
from trivsel.privacy import describe_exception
from trivsel.sources import get_scheme
from trivsel.sources.base import DeliveryContext, RowIssue

log = logging.getLogger(__name__)


def is_connection_error(exc: BaseException) -> bool:
    """True for a lost or refused database connection (psycopg's or SQLAlchemy's, as GX raises it)."""
    seen = 0
    while exc is not None and seen < 10:
        name = type(exc).__name__
        if isinstance(exc, psycopg.OperationalError) or name in ("OperationalError", "InterfaceError"):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


@dataclass
class Pending:
    """A delivery whose rows are in raw, still `validating`: what its validation and decision need."""
    muni: Municipality
    source: str
    period: str
    file_name: str
    digest: str
    size: int
    scheme: str
    tables: list[str]
    delivery_id: int
    total: int
    params: dict
    t_start: float = 0.0
    t_archived: float = 0.0
    t_loaded: float = 0.0

    def outcome(self, status: str, **kw) -> Outcome:
        return Outcome(self.muni.code, self.source, self.period, self.file_name, status, self.scheme,
                       self.delivery_id, **kw)


def suite_params(muni: Municipality, period: str, file_name: str) -> dict:
    """What a suite's {"$param": ...} kwargs are filled with for one delivery."""
    ctx = DeliveryContext(municipality_code=muni.code, period=period, file_name=file_name, municipality=muni.raw)
    return {"period": period, "municipality_code": muni.code, "year": ctx.year, "unit_names": ctx.unit_names}


def reject(conn, code: str, source: str, period: str, file_name: str, scheme_name: str | None, did: int,
           issues: list[tuple], tables: list[str]) -> Outcome:
    """Quarantine the delivery with its issues as readers may see them; its Outcome."""
    issues = readable_issues(issues, file_name)
    summary = _quarantine(conn, did, file_name, tables, issues)
    log.warning("quarantined %s/%s/%s %s: %s", code, source, period, file_name, summary)
    return Outcome(code, source, period, file_name, "quarantined", scheme_name, did, reason=summary,
                   issues=[RowIssue(r, c, m, v) for r, c, _k, m, v in issues])


def _reject(conn, p: Pending, issues: list[tuple]) -> Outcome:
    return reject(conn, p.muni.code, p.source, p.period, p.file_name, p.scheme, p.delivery_id, issues, p.tables)


ANALYZE_FROM_ROWS = 1000  # a batch this big gets fresh planner statistics before GX (refresh_statistics)


def refresh_statistics(conn: psycopg.Connection, pending: list[Pending]) -> list[str]:
    """ANALYZE each raw table the batch brought at least ANALYZE_FROM_ROWS rows into, once, before GX.

    Why: without fresh statistics the planner takes a new delivery_id for one row and GX's uniqueness checks
    become nested loops (measured: 2 s -> 195 s for a 41,000-row delivery). It used to run after every
    delivery's COPY; ANALYZE samples the whole table however small the delivery, so that was 127 ANALYZEs and
    56 % of the load to raw at scale 1, growing with the history in raw, and parallel ingests queued on its
    lock. The statistics are needed only by the validation, which reads the whole batch at once: one ANALYZE
    per table per batch gives it the same fresh statistics. A multi-table scheme counts its whole total
    towards each of its tables (an upper bound: at worst one ANALYZE too many). Returns the tables analysed."""
    rows: dict[str, int] = {}
    for p in pending:
        for t in p.tables:
            rows[t] = rows.get(t, 0) + p.total
    done = []
    for table in sorted(t for t, n in rows.items() if n >= ANALYZE_FROM_ROWS):
        t0 = time.time()
        conn.execute(sql.SQL("analyze raw.{}").format(sql.Identifier(table)))
        log.info("timing analyze raw.%s before validation: %.3fs (%d deliveries)", table, time.time() - t0,
                 sum(1 for p in pending if table in p.tables))
        done.append(table)
    return done


def validate_and_decide(conn: psycopg.Connection, pending: list[Pending], log_timing: bool = True) -> list[Outcome]:
    """Validate the loaded deliveries together (each raw table once, trivsel.validation.validate_batch),
    then decide each one, in order: `loaded`, `waiting`, `duplicate` or `quarantined` with its reasons.
    Called under the period locks of the deliveries' municipalities and periods."""
    from trivsel.validation import prepare, validate_batch

    if not pending:
        return []
    t0 = time.time()
    url = warehouse.url(role=warehouse.LOADER)
    prepare(url)  # GX's import and context in a thread, while the server runs the ANALYZE and the checks
    refresh_statistics(conn, pending)
    errors: dict[int, list[tuple]] = {}
    try:
        found, _timings = validate_batch(url, {p.delivery_id: (p.tables, p.params) for p in pending})
    except Exception as exc:  # noqa: BLE001 - a broken suite must not leave the deliveries 'validating'
        if is_connection_error(exc):
            raise  # the warehouse went away: the task retries, and the stale 'validating' rows are cleaned up
        log.error("Great Expectations failed on deliveries %s: %s", [p.delivery_id for p in pending],
                  describe_exception(exc))
        found = {}
        errors = {p.delivery_id: [(None, None, "gx_error", f"validation could not run: {type(exc).__name__}: "
                                                            f"{str(exc)[:300]}", None)] for p in pending}
    gx_each = (time.time() - t0) / len(pending)  # the batch's time shared out: the bench sums the field
    outcomes = []
    for p in pending:
        if p.delivery_id in errors:
            outcomes.append(_reject(conn, p, errors[p.delivery_id]))
        elif found.get(p.delivery_id):
            outcomes.append(_reject(conn, p, [
                (f.first_row, f.column, f"gx:{f.expectation}", f"{f.table}: {f.reason}", f.examples)
                for f in found[p.delivery_id]]))
        else:
            outcomes.append(_decide(conn, p, gx_each, log_timing))
    return outcomes


def _decide(conn: psycopg.Connection, p: Pending, gx_seconds: float, log_timing: bool) -> Outcome:
    code, source, period, did, total = p.muni.code, p.source, p.period, p.delivery_id, p.total
    t_validated = time.time()
    status, reason = decide(conn, did, p.scheme, p.muni, source, period, p.digest, total, p.tables)
    if status == "duplicate":
        log.info("duplicate %s/%s/%s %s as delivery %s: %s", code, source, period, p.file_name, did, reason)
        return p.outcome("duplicate", reason=reason)
    if status == "quarantined":
        return _reject(conn, p, [(None, None, "consistency", reason, None)])
    if status == "waiting":
        log.warning("waiting %s/%s/%s %s as delivery %s (%d rows kept, not visible): %s", code, source, period,
                    p.file_name, did, total, reason)
        return p.outcome("waiting", rows=total, reason=reason)
    log.info("loaded %s/%s/%s %s as delivery %s: %d rows", code, source, period, p.file_name, did, total)
    if log_timing:
        log_stage_timing(p, gx_seconds, time.time() - t_validated)
    return p.outcome("loaded", rows=total)


def log_stage_timing(p: Pending, gx_seconds: float, decide_seconds: float) -> None:
    """Stage timings (read by trivsel.bench): epoch start, then seconds for checksum+archive+register,
    parse+COPY, Great Expectations (0 when the run's validate task validates it later, and logs
    `timing validate <table> ...` per table instead), and the decision."""
    log.info("timing %s/%s %s delivery %s: start %.3f archive %.3fs load %.3fs gx %.3fs decide %.3fs rows %d bytes %d",
             p.muni.code, p.source, p.file_name, p.delivery_id, p.t_start, p.t_archived - p.t_start,
             p.t_loaded - p.t_archived, gx_seconds, decide_seconds, p.total, p.size)


def record_loaded(conn: psycopg.Connection, p: Pending) -> None:
    """Keep a parsed delivery's row count for the run's validate task (it stays `validating`, unseen by
    staging, which reads `loaded` deliveries only)."""
    conn.execute("update audit.delivery set rows_loaded = %s, reason = %s where delivery_id = %s"
                 " and status = 'validating'", (p.total, AWAITING_VALIDATE, p.delivery_id))


def validate_run(run_id: str, codes: list[str], periods: list[str], config: Config | None = None
                 ) -> dict[str, list[str]]:
    """The DAG's validate task: every delivery this run's ingest tasks left `validating` (their files parsed
    and COPYed), for every municipality and period of the run, validated at once (each raw table once) and
    decided; then the waiting partners of each municipality's period are re-evaluated, as ingest does.

    Holds the period lock of every (municipality, period) it decides, taken in a fixed order, so no load of
    the same period interleaves; a delivery no longer `validating` once the locks are held (another load
    cleaned it up as interrupted and took its file again) is left alone.

    Returns {municipality code: [lines of its deliveries quarantined here]}: the mapped `verdict` task of
    each municipality fails on its own lines, and the others publish."""
    config = config or load_config()
    failed: dict[str, list[str]] = {code: [] for code in codes}
    with warehouse.connect(warehouse.LOADER, autocommit=True) as conn:
        schema.ensure(conn)
        groups = sorted({(c, p) for c, p in conn.execute(
            "select distinct municipality_code, period from audit.delivery where run_id = %s and status ="
            " 'validating' and municipality_code = any(%s) and period = any(%s)", (run_id, codes, periods))})
        with ExitStack() as locks:
            for code, period in groups:
                locks.enter_context(period_lock(conn, code, period))
            rows = conn.execute(
                "select delivery_id, municipality_code, source, period, file_name, checksum_sha256, size_bytes,"
                " scheme, rows_loaded from audit.delivery where run_id = %s and status = 'validating'"
                " and municipality_code = any(%s) and period = any(%s) order by delivery_id",
                (run_id, codes, periods)).fetchall()
            pending = []
            for did, code, source, period, file_name, digest, size, scheme_name, rows_loaded in rows:
                muni = config.municipality(code)
                tables = [t.name for t in get_scheme(scheme_name).scheme.tables]
                pending.append(Pending(muni, source, period, file_name, digest, size or 0, scheme_name, tables,
                                       did, rows_loaded or 0, suite_params(muni, period, file_name)))
            outcomes = validate_and_decide(conn, pending, log_timing=False)
            for code, period in groups:
                mine = [o for o in outcomes if o.municipality_code == code and o.period == period]
                reevaluate(conn, config.municipality(code), period, mine)
        # From audit, not from this attempt's outcomes: a retry of the task must still fail the
        # municipalities an earlier attempt quarantined. Only validation's own checks (GX, consistency):
        # a file that could not be parsed already failed its ingest task.
        for code, source, period, file_name, scheme_name, did, reason in conn.execute(
                """select d.municipality_code, d.source, d.period, d.file_name, d.scheme, d.delivery_id, d.reason
                     from audit.delivery d
                    where d.run_id = %s and d.status = 'quarantined' and d.municipality_code = any(%s)
                      and d.period = any(%s)
                      and exists (select 1 from quarantine.delivery_issue i where i.delivery_id = d.delivery_id
                                     and (i.check_name like 'gx%%' or i.check_name = 'consistency'))
                    order by d.delivery_id""", (run_id, codes, periods)):
            failed.setdefault(code, []).append(
                Outcome(code, source, period, file_name, "quarantined", scheme_name, did, reason=reason).line())
    for o in outcomes:
        log.info("validated %s", o.line())
    bad = {c: lines for c, lines in failed.items() if lines}
    log.info("run %s: validated %d deliveries of %d municipality periods; quarantined: %s", run_id,
             len(outcomes), len(groups), bad or "none")
    return failed


def wait_for_other_runs(conn: psycopg.Connection, run_id: str, run_is_live=None, poll_seconds: float = 2.0) -> None:
    """Before a run pins its snapshot: wait while another run that is still going has parsed deliveries its
    validate task has not decided yet. Two runs of one period at once: the one that found the other's
    parsed file `unchanged` would otherwise pin the old version while the other is about to load the
    correction, and the two runs would build from different deliveries. A run Airflow reports as no longer
    running is not waited for (the next ingest cleans its deliveries up); one it does not know is waited for
    while its deliveries are younger than settings.build_lease_minutes."""
    from trivsel.build_lease import ttl_minutes
    from trivsel.loading.decision import _still_running

    announced: set[str] = set()
    while True:
        others = [(owner, n) for owner, n in conn.execute(
            "select run_id, count(*) from audit.delivery where status = 'validating' and reason = %s"
            " and run_id is distinct from %s and received_at > now() - %s * interval '1 minute'"
            " group by run_id order by run_id", (AWAITING_VALIDATE, run_id, ttl_minutes()))
            if _still_running(owner, True, run_is_live)]
        if not others:
            return
        for owner, n in others:
            if owner not in announced:
                log.info("run %s: waiting for run %s's validate task to decide its %d parsed deliveries", run_id,
                         owner, n)
                announced.add(owner)
        time.sleep(poll_seconds)


