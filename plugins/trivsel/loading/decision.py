"""Decision: what a delivery becomes, and why, in the transactions that make it so.

What its bytes already are (unchanged, duplicate, a superseded version put back), the deciding transaction
after validation (duplicate, or trivsel.consistency's loaded / waiting / quarantined, with supersession),
quarantine with every reason as a reader may see it, the re-evaluation of waiting partners, and the clean-up
of loads that died between registering and deciding. Its own module because these are the loader's
guarantees (never lose a delivery, nothing half-checked visible, a reason for every quarantine), kept apart
from how the rows got into raw.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import psycopg
from psycopg import sql

from trivsel import consistency
from trivsel.config import Municipality
from trivsel.loading.discovery import holds_period_lock
from trivsel.loading.outcome import Outcome
from trivsel.privacy import mask_identifiers, mask_value

log = logging.getLogger(__name__)

#: audit.delivery.reason of a delivery a DAG run's ingest task parsed and left `validating` for that run's
#: validate task (trivsel.loading.validating.record_loaded)
AWAITING_VALIDATE = "parsed; awaiting its run's validate task"

#: run_is_live(run_id): True/False when the orchestrator knows the run (Airflow's dag-run state), None when it
#: does not (another installation, the CLI); then a pending delivery younger than build_lease_minutes is live
RunIsLive = Callable[[str], "bool | None"]


def _known_delivery(conn, code: str, source: str, period: str, file_name: str,
                    digest: str) -> tuple[str, int, str] | None:
    """What the same bytes already are for this municipality, source and period: ('unchanged', id, status)
    when the latest delivery under this file name has them (nothing to do); ('duplicate', id, status) when
    they are the current (loaded) version's bytes under another name; ('revert', id, 'superseded') when
    they are an earlier, superseded version's (put back after a correction: it becomes current again);
    None for bytes to load. Deliveries marked in quarantine.delivery_issue as 'interrupted' (a killed
    load), 'parser_error' (a scheme crashed) or 'reprocess' (an operator asks for it, e.g. after a key
    rotation) do not count: their files are taken again."""
    decided = """status in ('loaded', 'waiting', 'quarantined', 'superseded', 'duplicate')
             and not exists (select 1 from quarantine.delivery_issue i where i.delivery_id = d.delivery_id
                             and i.check_name in ('interrupted', 'parser_error', 'reprocess'))"""
    latest = conn.execute(
        f"""select delivery_id, status, checksum_sha256 from audit.delivery d
            where municipality_code = %s and source = %s and period = %s and file_name = %s and {decided}
            order by delivery_id desc limit 1""", (code, source, period, file_name)).fetchone()
    if latest and latest[2] == digest:
        return "unchanged", latest[0], latest[1]
    # The same bytes parsed by another run that is still going (cleanup_interrupted left it): that run's
    # validate task decides it; loading the file a second time would race it for the key.
    pending = conn.execute(
        """select delivery_id, run_id from audit.delivery
            where municipality_code = %s and source = %s and period = %s and file_name = %s
              and checksum_sha256 = %s and status = 'validating' and reason = %s
            order by delivery_id desc limit 1""", (code, source, period, file_name, digest, AWAITING_VALIDATE)
    ).fetchone()
    if pending:
        return "unchanged", pending[0], f"validating in run {pending[1]}"
    match = conn.execute(
        f"""select delivery_id, status from audit.delivery d
            where municipality_code = %s and source = %s and period = %s and checksum_sha256 = %s
              and status in ('loaded', 'superseded') and {decided}
            order by status = 'loaded' desc, delivery_id desc limit 1""", (code, source, period, digest)).fetchone()
    if match is None:
        return None
    return ("duplicate" if match[1] == "loaded" else "revert"), match[0], match[1]


def decide(conn: psycopg.Connection, did: int, scheme_name: str, muni: Municipality, source: str, period: str,
           digest: str, total: int, tables: list[str]) -> tuple[str, str | None]:
    """The decision on a validated delivery, as (status, reason): 'duplicate', or consistency's 'loaded',
    'waiting' or 'quarantined' (the caller quarantines: its rows are still in raw).

    Cross-delivery consistency (trivsel.consistency): against what is loaded, in one transaction with the
    decision, so a partner loading at the same moment in another task is seen either before or after.
    Supersession is decided here, from the current state of the key (its rows locked), not from what
    _known_delivery saw before the load: a version loaded meanwhile with the same bytes makes this one a
    duplicate; any other loaded version is superseded by this one in the same transaction.
    """
    code = muni.code
    with conn.transaction():
        current = conn.execute(
            """select delivery_id, checksum_sha256, status,
                      exists (select 1 from quarantine.delivery_issue i where i.delivery_id = d.delivery_id
                                 and i.check_name in ('interrupted', 'parser_error', 'reprocess')) as retake
                 from audit.delivery d
                where municipality_code = %s and source = %s and period = %s and scheme = %s
                  and status in ('loaded', 'waiting') and delivery_id <> %s
                order by delivery_id for update of d""", (code, source, period, scheme_name, did)).fetchall()
        # (a version marked to be taken again, e.g. 'reprocess' after a key rotation, is no duplicate's original)
        same = [d for d, c, st, retake in current if c == digest and st == "loaded" and not retake]
        if same:
            for t in tables:
                conn.execute(sql.SQL("delete from raw.{} where delivery_id = %s").format(sql.Identifier(t)),
                             (did,))
            reason = f"byte-identical to delivery {same[-1]}"
            conn.execute("update audit.delivery set status = 'duplicate', reason = %s, rows_loaded = 0,"
                         " decided_at = now() where delivery_id = %s", (reason, did))
            verdict = None
        else:
            verdict = consistency.check(conn, did, scheme_name, muni, period, total)
            if verdict.status == "waiting":
                consistency.mark_waiting(conn, did, verdict.reason, total)
            elif verdict.status == "loaded":
                consistency.mark_loaded(conn, did, total)
    if verdict is None:
        return "duplicate", reason
    return verdict.status, verdict.reason


def _quarantine(conn, delivery_id: int, file_name: str, tables: list[str], issues: list[tuple]) -> str:
    """Remove the delivery's raw rows and record why, in one transaction."""
    with conn.transaction():
        for t in tables:
            conn.execute(sql.SQL("delete from raw.{} where delivery_id = %s").format(sql.Identifier(t)),
                         (delivery_id,))
        with conn.cursor() as cur:
            with cur.copy("copy quarantine.delivery_issue (delivery_id, file_name, row_number, column_name,"
                          " check_name, reason, value) from stdin") as copy:
                for row_number, column, check, reason, value in issues:
                    copy.write_row((delivery_id, file_name, row_number, column, check, reason, value))
        summary = _summarise(file_name, issues)
        conn.execute("update audit.delivery set status = 'quarantined', reason = %s, rows_loaded = 0,"
                     " decided_at = now() where delivery_id = %s", (summary, delivery_id))
    return summary


def readable_issues(issues: list[tuple], file_name: str) -> list[tuple]:
    """Issues as readers see them (quarantine, audit, logs, coverage): reasons and values keep their row and
    column, but any employee-number-like value is masked (trivsel.privacy), e.g. a unit column that holds
    employee numbers because the municipality swapped two columns."""
    return [(row, column, check, mask_identifiers(reason, keep=(file_name,)), mask_value(value))
            for row, column, check, reason, value in issues]


def _summarise(file_name: str, issues: list[tuple]) -> str:
    shown = []
    for row_number, column, _check, reason, _value in issues[:5]:
        if reason.startswith(file_name):  # the parser already said where
            shown.append(reason)
            continue
        where = file_name
        if row_number is not None:
            where += f" row {row_number}"
        if column:
            where += f" column {column}"
        shown.append(f"{where}: {reason}")
    more = f" (+{len(issues) - 5} more)" if len(issues) > 5 else ""
    return "; ".join(shown) + more

def reevaluate(conn: psycopg.Connection, muni: Municipality, period: str, outcomes: list[Outcome]) -> None:
    """Waiting deliveries of this municipality and period whose partner is now loaded become `loaded`; loaded
    ones whose partner was replaced by one that no longer matches become `waiting` (trivsel.consistency).

    Called under period_lock after the period's files, so a partner that arrived in this run (or in an
    earlier one) is seen, whatever the order of the files. The outcomes list gets a line for every change
    (or the file's own line is updated), so the task log and the run's log name it.
    """
    dependent = consistency.dependent_schemes()
    rows = conn.execute(
        "select delivery_id, source, scheme, file_name, status, rows_loaded, reason from audit.delivery"
        " where municipality_code = %s and period = %s and scheme = any(%s) and status in ('waiting', 'loaded')"
        " order by delivery_id", (muni.code, period, list(dependent))).fetchall()
    by_id = {o.delivery_id: o for o in outcomes if o.delivery_id is not None}
    for did, source, scheme_name, file_name, status, rows_loaded, reason in rows:
        with conn.transaction():
            current = conn.execute("select status from audit.delivery where delivery_id = %s for update",
                                   (did,)).fetchone()[0]
            if current != status:
                continue
            verdict = consistency.check(conn, did, scheme_name, muni, period, rows_loaded)
            if verdict.status == status and verdict.reason == reason:
                continue
            if verdict.status == "loaded":
                consistency.mark_loaded(conn, did)
                note = "was waiting; its partner is now loaded"
            elif verdict.status == "waiting":
                consistency.mark_waiting(conn, did, verdict.reason)
                note = verdict.reason if status == "waiting" else f"held (was loaded): {verdict.reason}"
        if verdict.status == "quarantined":
            from trivsel.sources import get_scheme

            tables = [t.name for t in get_scheme(scheme_name).scheme.tables]
            note = _quarantine(conn, did, file_name, tables, [(None, None, "consistency", verdict.reason, None)])
        log.warning("municipality %s, period %s: %s %s (delivery %s) %s -> %s: %s", muni.code, period, source,
                    file_name, did, status, verdict.status, note)
        outcome = by_id.get(did)
        if outcome is None:
            outcome = Outcome(muni.code, source, period, file_name, verdict.status, scheme_name, did,
                              rows=rows_loaded or 0)
            outcomes.append(outcome)
            by_id[did] = outcome
        outcome.status, outcome.reason = verdict.status, note


def cleanup_interrupted(conn: psycopg.Connection, code: str, period: str, run_id: str | None = None,
                        run_is_live: RunIsLive | None = None) -> list[int]:
    """Deliveries of this municipality and period still `validating`: a load that died (killed, server gone)
    between registering and deciding, or, in the DAG, deliveries an ingest task parsed whose run's validate
    task never decided them (the run crashed; a retry of the validate task itself decides them first).
    Called under period_lock, so no live load owns them (validate_run holds it while it decides). Their raw
    rows (if a COPY had committed) are removed and they become `quarantined` with check 'interrupted', in
    one transaction; the file itself is then taken again by this run, since 'interrupted' is no decision.
    Not cleaned up: a delivery another live run parsed whole, and one this run itself parsed whole (a retry of
    its ingest task): their run's validate task decides them."""
    if not holds_period_lock(conn, code, period):
        raise RuntimeError(f"cleanup_interrupted({code}, {period}) needs period_lock({code}, {period}) held: "
                           "without it, a live load's delivery would be taken for an interrupted one")
    from trivsel.build_lease import ttl_minutes

    stale = []
    for did, owner, reason, recent in conn.execute(
            "select delivery_id, run_id, reason, received_at > now() - %s * interval '1 minute'"
            " from audit.delivery where municipality_code = %s and period = %s and status = 'validating'"
            " order by delivery_id", (ttl_minutes(), code, period)):
        if (reason == AWAITING_VALIDATE and owner is not None and owner != run_id
                and _still_running(owner, recent, run_is_live)):
            # Another DAG run parsed it and is still going: its validate task decides it (two runs of one
            # period at once).
            log.info("municipality %s, period %s: delivery %s is run %s's, still to be validated by it",
                     code, period, did, owner)
            continue
        if reason == AWAITING_VALIDATE and owner is not None and owner == run_id:
            # This run's own earlier attempt parsed it whole (AWAITING_VALIDATE is set only after its COPY
            # committed): the run's validate task decides it, and the file is found `unchanged`. An ingest lane
            # (trivsel.lanes) retried after a lost connection thus loads again only what it had not finished,
            # not every municipality before it. A delivery interrupted mid-load never got that reason.
            continue
        stale.append(did)
    if not stale:
        return []
    from trivsel.sources import all_schemes

    tables = sorted({t.name for m in all_schemes().values() for t in m.scheme.tables})
    reason = f"interrupted load: the delivery was still validating when run {run_id or '?'} started; " \
             f"its partial rows were removed and the file is taken again"
    with conn.transaction():
        for t in tables:
            conn.execute(sql.SQL("delete from raw.{} where delivery_id = any(%s)").format(sql.Identifier(t)),
                         (stale,))
        for did in stale:
            name = conn.execute("select file_name from audit.delivery where delivery_id = %s", (did,)).fetchone()[0]
            conn.execute("insert into quarantine.delivery_issue (delivery_id, file_name, check_name, reason)"
                         " values (%s, %s, 'interrupted', %s)", (did, name, reason))
        conn.execute("update audit.delivery set status = 'quarantined', reason = %s, rows_loaded = 0,"
                     " decided_at = now() where delivery_id = any(%s)", (reason, stale))
    log.warning("municipality %s, period %s: cleaned up interrupted deliveries %s", code, period, stale)
    return stale


def _still_running(owner: str, recent: bool, run_is_live: RunIsLive | None) -> bool:
    """Whether the run that left a delivery awaiting its validate task may still decide it: what the
    orchestrator says of that run, else (a run it does not know) whether the delivery is younger than
    settings.build_lease_minutes, the time after which a crashed run's build lease expires too."""
    state = None
    if run_is_live is not None:
        try:
            state = run_is_live(owner)
        except Exception as exc:  # noqa: BLE001 - the orchestrator unreachable: judge by age
            log.warning("the state of run %s could not be read (%s); judged by its delivery's age", owner,
                        type(exc).__name__)
    return recent if state is None else bool(state)

