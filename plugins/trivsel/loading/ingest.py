"""Ingest: one file, and one municipality's period, through every job of the loader in order.

Discover (trivsel.loading.discovery), archive and register (.archiving), load into raw set-based (.bulk) or
through the scheme's parser (.parsing), validate with Great Expectations (trivsel.validation), decide
(.decision). Its own module because it is the one place that knows the order and the period lock that
spans it; each job stays testable on its own.
"""

from __future__ import annotations

import logging
import time
from datetime import date
from pathlib import Path

import psycopg

from trivsel import schema, warehouse
from trivsel.config import Config, Municipality, load_config, validate_period
from trivsel.loading.archiving import _register, archive, checksum
from trivsel.loading.bulk import _load_bulk
from trivsel.loading.decision import RunIsLive, _known_delivery, cleanup_interrupted, reevaluate
from trivsel.loading.discovery import discover, period_lock, record_unroutable
from trivsel.loading.outcome import Outcome
from trivsel.loading.parsing import _load_parsed
from trivsel.loading.validating import Pending, log_stage_timing, record_loaded, validate_and_decide
from trivsel.loading.validating import reject as _reject
from trivsel.sources import get_scheme
from trivsel.sources.base import DeliveryContext

log = logging.getLogger(__name__)


def ingest_file(conn: psycopg.Connection, path: Path, muni: Municipality, source: str, period: str,
                run_id: str | None = None, key: bytes | None = None) -> Outcome:
    """Take one delivered file all the way to `loaded` or `quarantined`, under period_lock (taken here too,
    so no caller can load without it; a caller that already holds it just nests)."""
    with period_lock(conn, muni.code, period):
        loaded = _load_file(conn, path, muni, source, period, run_id, key)
        if isinstance(loaded, Outcome):
            return loaded
        return validate_and_decide(conn, [loaded])[0]


def _load_file(conn: psycopg.Connection, path: Path, muni: Municipality, source: str, period: str,
               run_id: str | None, key: bytes | None) -> Outcome | Pending:
    """Checksum to COPY for one file: an Outcome when it is decided already (unchanged, duplicate, rejected
    before or while parsing), else the Pending delivery, `validating`, its rows in raw (trivsel.loading.validating
    validates and decides it)."""
    code = muni.code
    t_start = time.time()
    digest, size = checksum(path)
    src_cfg = muni.sources[source]
    rule = src_cfg.scheme_for(path.name)
    scheme_name = rule.scheme if rule else None
    known = _known_delivery(conn, code, source, period, path.name, digest)
    if known is not None:
        status, seen_id, seen_status = known
        if status == "unchanged":
            return Outcome(code, source, period, path.name, "unchanged", scheme_name, seen_id,
                           reason=f"already {seen_status} as delivery {seen_id}")
        if status == "duplicate":
            archived = archive(path, code, source, period, digest)
            with conn.transaction():
                did = _register(conn, code=code, source=source, period=period, scheme=scheme_name, path=path,
                                digest=digest, size=size, archived=archived, run_id=run_id, status="duplicate",
                                reason=f"byte-identical to delivery {seen_id}")
            return Outcome(code, source, period, path.name, "duplicate", scheme_name, did,
                           reason=f"byte-identical to delivery {seen_id}")
        # status == "revert": the bytes of an earlier, superseded version: loaded again below as a new
        # delivery, which supersedes the correction in the deciding transaction (history kept).
        log.info("%s/%s/%s %s has the bytes of superseded delivery %s: it becomes the current version again",
                 code, source, period, path.name, seen_id)

    archived = archive(path, code, source, period, digest)
    with conn.transaction():
        did = _register(conn, code=code, source=source, period=period, scheme=scheme_name, path=path,
                        digest=digest, size=size, archived=archived, run_id=run_id, status="validating")
    log.info("archived %s as delivery %s (sha256 %s, %d bytes)", path.name, did, digest[:12], size)
    t_archived = time.time()

    def reject(issues: list[tuple], tables: list[str]) -> Outcome:
        return _reject(conn, code, source, period, path.name, scheme_name, did, issues, tables)

    current_month = date.today().strftime("%Y-%m")
    if period > current_month:
        return reject([(None, None, "period", f"period {period} is in the future (after the current month "
                                              f"{current_month}): no delivery can cover a month that has not "
                                              f"happened yet", period)], [])
    if not src_cfg.delivers:
        return reject([(None, None, "config", f"municipality {code} is not registered as delivering "
                                                f"{source} (config/municipalities.yml)", None)], [])
    if rule is None:
        patterns = ", ".join(r.files for r in src_cfg.schemes)
        return reject([(None, None, "scheme", f"file name matches none of {code}'s {source} schemes "
                                                f"({patterns})", None)], [])
    module = get_scheme(rule.scheme)
    scheme = module.scheme
    tables = [t.name for t in scheme.tables]
    if scheme.suffixes and path.suffix.lower() not in scheme.suffixes:
        return reject([(None, None, "scheme", f"scheme {scheme.name} expects {'/'.join(scheme.suffixes)} "
                                                f"files, got {path.suffix or 'no suffix'}", None)], tables)
    if size == 0:
        return reject([(None, None, "parse", "the file is empty", None)], tables)

    ctx = DeliveryContext(municipality_code=code, period=period, file_name=path.name, municipality=muni.raw,
                          pseudonym_key=key)
    outcome_or_total = _load_bulk(conn, path, module, ctx, did, reject, tables, size)
    if outcome_or_total is None:
        outcome_or_total = _load_parsed(conn, path, module, ctx, did, reject, tables)
    if isinstance(outcome_or_total, Outcome):
        return outcome_or_total
    total = outcome_or_total

    params = {"period": period, "municipality_code": code, "year": ctx.year, "unit_names": ctx.unit_names}
    return Pending(muni, source, period, path.name, digest, size, scheme.name, tables, did, total, params,
                   t_start, t_archived, time.time())


# ---------------------------------------------------------------- one municipality, one period


def ingest_municipality(code: str, period: str, run_id: str | None = None,
                        config: Config | None = None, validate: bool = True,
                        run_is_live: RunIsLive | None = None) -> list[Outcome]:
    """Everything one municipality delivered for one period. Holds period_lock from discovery (undated
    files moved into the period) to the last decision, so two loads of the same municipality and period
    never interleave, whatever path started them: the second waits, then finds nothing new.

    The period's files are loaded first, then validated together (each raw table once) and decided.
    validate=False (the DAG) stops after the load: parsed deliveries stay `validating` (outcome status
    'validating') for the run's validate task (trivsel.loading.validating.validate_run), which validates
    every municipality's at once; their timing lines say gx 0."""
    validate_period(period)
    config = config or load_config()
    muni = config.municipality(code)
    outcomes = []
    with warehouse.connect(warehouse.LOADER, autocommit=True) as conn:
        schema.ensure(conn)
        with period_lock(conn, code, period):
            files = discover(conn, code, period)
            key = None
            if any(s == "hr_absence" for s, _ in files):
                from trivsel.keys import pseudonym_key

                key = pseudonym_key()
            cleanup_interrupted(conn, code, period, run_id, run_is_live)
            outcomes += record_unroutable(conn, config.codes, only_code=code, run_id=run_id)
            pending: list[Pending] = []
            for source, path in files:
                loaded = _load_file(conn, path, muni, source, period, run_id, key)
                if isinstance(loaded, Pending):
                    pending.append(loaded)
                    outcomes.append(loaded.outcome("validating", rows=loaded.total))
                else:
                    outcomes.append(loaded)
            if validate:
                decided = {o.delivery_id: o for o in validate_and_decide(conn, pending)}
                outcomes = [decided.get(o.delivery_id, o) if o.status == "validating" else o for o in outcomes]
                reevaluate(conn, muni, period, outcomes)
            else:
                for p in pending:
                    record_loaded(conn, p)
                    log_stage_timing(p, 0.0, 0.0)
    return outcomes

