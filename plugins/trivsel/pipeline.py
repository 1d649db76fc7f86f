"""The steps of the monthly DAG as plain functions, so they are tested without Airflow."""

from __future__ import annotations

import importlib
import logging
from datetime import date, datetime

import psycopg

from trivsel import build_lease, loading, schema, snapshot, warehouse
from trivsel.config import load_config, validate_period

log = logging.getLogger(__name__)

STAT_DOMAINS = ("survey", "absence", "incidents")


def previous_month(d: date | datetime) -> str:
    y, m = d.year, d.month - 1
    if m == 0:
        y, m = y - 1, 12
    return f"{y:04d}-{m:02d}"


def _day(d: date | datetime | None) -> date | None:
    return d.date() if isinstance(d, datetime) else d


def months(first: str, last: str) -> list[str]:
    y, m = int(first[:4]), int(first[5:])
    out = []
    while f"{y:04d}-{m:02d}" <= last:
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def plan(period_param: str | None, municipality_param: str | None, logical_date: datetime | None,
         run_id: str, through_param: str | None = None) -> dict:
    """Which periods and municipalities this run covers.

    A scheduled run on the 5th of a month processes the month before; `trivsel run --period` and
    backfills pass the period as a param. A backfill over a range (`through`) loads every period of the
    range that has deliveries, then builds the models once: ten years of history cost one dbt build,
    not 120.
    """
    period = validate_period(period_param) if period_param else previous_month(logical_date or date.today())
    periods = [period]
    if through_param:
        through = validate_period(through_param)
        if through < period:
            raise ValueError(f"through ({through}) is before period ({period})")
        delivered = set(loading.periods_with_deliveries())
        periods = sorted({period, through} | {p for p in months(period, through) if p in delivered})
    config = load_config()
    codes = config.codes
    if municipality_param:
        config.municipality(municipality_param)  # fails clearly on an unknown code
        codes = [municipality_param]
    warehouse.start() if not warehouse.is_external() else None
    from trivsel import roles

    roles.apply_or_warn()  # bootstrap (the only superuser step): roles, logins, grants, owners (trivsel.roles)
    loading.sync_config(config)
    with warehouse.connect(warehouse.LOADER, autocommit=True) as conn:  # files no municipality's ingest would ever take
        schema.ensure(conn)
        unroutable = loading.record_unroutable(conn, config.codes, run_id=run_id)
    for o in unroutable:
        log.warning("run %s: %s", run_id, o.line())
    for p in periods:
        loading.record_period_run(p, run_id, as_of=_day(logical_date))
    log.info("run %s: periods %s, municipalities %s", run_id, ", ".join(periods), ", ".join(codes))
    return {"period": periods[-1], "periods": periods, "codes": codes}


def pull(code: str, period: str, run_id: str | None = None, as_of: date | datetime | None = None) -> dict:
    """Fetch what is new at the municipality's remote locations into its inbox (trivsel.remote), tolerating a
    remote that fails: returns the pull's report, with `errors` for the locations that failed.

    Why tolerated, and not an Airflow retry: the remote's transient errors are already retried inside the pull
    (with backoff, settings remote_attempts); a location still down after that must not hold back the load of
    what is in the inbox, nor (through a task retry's delay) the run's validate task that every municipality
    waits for. The failure stays visible: logged here at ERROR, recorded in audit.pull_failure, and the
    municipality's verdict task fails with it (trivsel.verdict). A warehouse error (psycopg.OperationalError)
    is infrastructure: it is raised, and the task keeps its retries."""
    from trivsel.remote.pull import pull_municipality, record_failures

    try:
        report = pull_municipality(code, period, run_id=run_id, as_of=as_of, raise_errors=False).as_dict()
    except psycopg.OperationalError:
        raise
    except Exception as exc:  # a location's own bug or an unexpected reply: as a failed location, not a crash
        error = warehouse.redact(f"the pull failed: {type(exc).__name__}: {exc}")
        report = {"municipality_code": code, "period": period, "errors": [error]}
        if run_id is not None:
            with warehouse.connect(warehouse.LOADER, autocommit=True) as conn:
                record_failures(conn, run_id, code, period, report["errors"])
    if report["errors"]:
        log.error("municipality %s, period %s: pulling failed for %d location(s); the inbox is loaded anyway "
                  "and the municipality's verdict task fails with:\n%s", code, period, len(report["errors"]),
                  "\n".join(report["errors"]))
    return report


try:  # Airflow's "fail now, never retry" (the task SDK's; outside Airflow, e.g. in tests without it, a plain error)
    from airflow.sdk.exceptions import AirflowFailException as _FailWithoutRetry
except ImportError:  # pragma: no cover - Airflow is a dependency of the project; this keeps pipeline importable
    _FailWithoutRetry = RuntimeError  # type: ignore[misc,assignment]


class DeliveriesQuarantined(_FailWithoutRetry):
    """Raised after a municipality's load so its task shows failed; the other deliveries still loaded.

    A quarantine is a deterministic data error: a retry reads the same bytes and decides the same, so it
    is an AirflowFailException (the task fails at once, without its retries). Infrastructure errors (a lost
    connection, a warehouse restart) are raised as they are and keep the task's retries. In the DAG an ingest
    lane catches it (ingest_lane): `lines` are what the municipality's verdict then names."""

    def __init__(self, message: str, lines: list[str] | None = None) -> None:
        super().__init__(message)
        self.lines = list(lines or [])


def ingest(code: str, period: str, run_id: str | None = None, validate: bool = True,
           run_is_live=None) -> list[dict]:
    """One municipality's period. validate=False (the DAG): parsed deliveries stay `validating` for the
    run's validate task; a file that cannot be parsed still quarantines and fails this task. run_is_live
    (the DAG's: Airflow's dag-run state) tells another run's pending deliveries from a crashed run's
    (trivsel.loading.decision.cleanup_interrupted)."""
    outcomes = loading.ingest_municipality(code, period, run_id, validate=validate, run_is_live=run_is_live)
    summary = loading.summary_text(outcomes)
    log.info("municipality %s, period %s:\n%s", code, period, summary)
    waiting = [o for o in outcomes if o.status == "waiting"]
    if waiting:  # not a failure: held until its partner delivery loads (trivsel.consistency)
        log.warning("municipality %s, period %s: %d deliveries waiting for a partner delivery:\n%s", code, period,
                    len(waiting), "\n".join(o.line() for o in waiting))
    # A retry (or re-run) finds a quarantined file 'unchanged': it is still quarantined, so the task still fails.
    bad = [o for o in outcomes if o.status == "quarantined"
           or (o.status == "unchanged" and (o.reason or "").startswith("already quarantined"))]
    if bad:
        log.error("municipality %s, period %s: %d deliveries quarantined (a data error: no retry):\n%s", code,
                  period, len(bad), "\n".join(o.line() for o in bad))
        raise DeliveriesQuarantined(
            f"{len(bad)} of {len(outcomes)} deliveries of municipality {code} for {period} were quarantined "
            f"(see quarantine.delivery_issue):\n" + "\n".join(o.line() for o in bad), [o.line() for o in bad])
    return [{"file": o.file_name, "source": o.source, "status": o.status, "rows": o.rows} for o in outcomes]


def pull_and_ingest(code: str, period: str, run_id: str, as_of: date | datetime | None = None,
                    run_is_live=None) -> list[dict]:
    """The DAG's ingest task of one municipality and period: pull (tolerated, see pull), then load the inbox
    (ingest, validate=False). One task instance instead of two: each costs ~1 s of Airflow's fixed cost, and a
    national run has 98 municipalities (issue 15)."""
    pull(code, period, run_id, as_of)
    return ingest(code, period, run_id, validate=False, run_is_live=run_is_live)


def ingest_lane(lane: dict, run_id: str, as_of: date | datetime | None = None, run_is_live=None) -> dict:
    """The DAG's ingest task of one lane (trivsel.lanes): pull_and_ingest of each of its (municipality,
    period) jobs, one after another, each isolated from the others.

    One municipality never blocks another: a job whose files could not be parsed (DeliveriesQuarantined) or
    that failed unexpectedly is recorded in audit.ingest_failure (an error as its class and masked message,
    trivsel.privacy: a parser's message may quote a delivered value) and logged, and the lane goes on with its
    next job; the municipality's verdict task fails with it (trivsel.verdict), and the lane stays green. A lost
    warehouse connection is infrastructure, not the municipality's: it is raised, so the lane fails for the
    DAG's retries, and the retry finds the jobs loaded before it `unchanged` (the loader's checksums).

    Returns {"loaded": {"<code> <period>": [outcome dicts]}, "findings": {"<code> <period>": kind}}."""
    from trivsel import lanes
    from trivsel.loading.validating import is_connection_error
    from trivsel.privacy import describe_exception

    jobs = lane["jobs"]
    with warehouse.connect(warehouse.LOADER, autocommit=True) as conn:
        schema.ensure(conn)
        lanes.clear_failures(conn, run_id, jobs)
    loaded: dict[str, list[dict]] = {}
    found: dict[str, str] = {}
    log.info("run %s: lane %s: %d job(s): %s", run_id, lane["label"], len(jobs),
             ", ".join(f"{j['code']} {j['period']}" for j in jobs))
    for job in jobs:
        code, period = job["code"], job["period"]
        key = f"{code} {period}"
        try:
            loaded[key] = pull_and_ingest(code, period, run_id, as_of, run_is_live=run_is_live)
            continue
        except DeliveriesQuarantined as exc:  # logged by ingest(), one block for this municipality
            kind, lines = "quarantined", exc.lines
        except Exception as exc:
            if is_connection_error(exc):
                raise
            kind, lines = "error", [warehouse.redact(describe_exception(exc))]
            log.error("municipality %s, period %s: the load failed (the lane goes on with its next "
                      "municipality; the municipality's verdict task fails with it): %s", code, period, lines[0])
        found[key] = kind
        with warehouse.connect(warehouse.LOADER, autocommit=True) as conn:
            lanes.record_failure(conn, run_id, code, period, kind, lines)
    if found:
        log.warning("run %s: lane %s: %d of %d job(s) had findings (their verdict tasks fail with them): %s",
                    run_id, lane["label"], len(found), len(jobs),
                    ", ".join(f"{k} ({v})" for k, v in found.items()))
    else:
        log.info("run %s: lane %s: all %d job(s) loaded without findings", run_id, lane["label"], len(jobs))
    return {"loaded": loaded, "findings": found}


def validate(p: dict, run_id: str) -> dict[str, list[str]]:
    """The DAG's validate task: every delivery the run's ingest tasks parsed, validated at once (each raw
    table once, trivsel.loading.validating.validate_run) and decided. Returns {code: [quarantined lines]}."""
    failed = loading.validate_run(run_id, p["codes"], p["periods"])
    for code, lines in sorted(failed.items()):
        if lines:
            log.error("municipality %s: %d deliveries quarantined by validation (a data error: no retry):\n%s",
                      code, len(lines), "\n".join(lines))
    return failed


def run_statistics(domain: str, run_id: str | None = None) -> int:
    """Recompute one domain's significance tests into reporting (a no-op for a domain not built yet): the
    scopes whose input changed (trivsel.stats.scope_state), recorded as computed by run_id."""
    if domain not in STAT_DOMAINS:
        raise ValueError(f"unknown statistics domain {domain!r}")
    try:
        module = importlib.import_module(f"trivsel.stats.{domain}")
    except ModuleNotFoundError as exc:
        if exc.name == f"trivsel.stats.{domain}":
            log.warning("no statistics module for %s yet", domain)
            return 0
        raise
    with warehouse.connect(warehouse.TRANSFORMER) as conn:
        n = module.run(conn, run_id=run_id)
        conn.commit()
    log.info("statistics %s: %d rows into reporting", domain, n)
    return n


def finish(periods: list[str], run_id: str) -> dict:
    for period in periods:
        loading.record_period_run(period, run_id, finished=True)
    with warehouse.connect(warehouse.LOADER) as conn:
        schema.ensure(conn)
        rows = conn.execute(
            "select status, count(*) from audit.delivery where period = any(%s) group by status order by status",
            (periods,)).fetchall()
    summary = {status: n for status, n in rows}
    log.info("periods %s finished: %s", ", ".join(periods), summary)
    return summary


class GateFailed(_FailWithoutRetry):
    """loads_done failed on something a retry would meet again (not the warehouse's connection)."""


def loads_done(period: str, run_id: str, run_is_live=None) -> str:
    """The run's gate: take the build lease (one run's model phase at a time, trivsel.build_lease), then pin the
    snapshot of deliveries every model of this run is built from (trivsel.snapshot). A run that waited for
    another's build pins after it, so its snapshot holds what the other loaded.

    Retries: a psycopg.OperationalError (the warehouse restarted, a connection refused or lost) is
    infrastructure and is raised as it is, so the task retries (taking the lease and pinning again are
    idempotent for the same run); any other error (a lease timeout, a bug) fails at once as GateFailed."""
    try:
        return _loads_done(period, run_id, run_is_live)
    except (psycopg.OperationalError, _FailWithoutRetry):
        raise
    except Exception as exc:
        raise GateFailed(f"run {run_id}: loads_done failed ({type(exc).__name__}: {warehouse.redact(str(exc))}); "
                         f"not retried: only a warehouse connection error is") from exc


def _loads_done(period: str, run_id: str, run_is_live=None) -> str:
    with warehouse.connect(warehouse.LOADER, autocommit=True) as conn:  # audit is the loader's
        build_lease.acquire(conn, run_id)
        loading.wait_for_other_runs(conn, run_id, run_is_live)  # their validate tasks need no lease
        pinned = snapshot.pin(conn, run_id)
        snapshot.prune(conn)
    log.info("run %s: models build from %d loaded deliveries (pinned)", run_id, pinned["loaded"])
    return period


def certify(p: dict, context: dict, judged: list[str] | None = None, lanes: list[dict] | None = None) -> dict:
    """The DAG's certify step: measure this run's upstream (trivsel.upstream), then certify or refuse.
    judged: the findings task's list (the municipalities `verdict` is mapped over, in map-index order);
    lanes: the lanes task's list (what `ingest` is mapped over: names a failed lane)."""
    from trivsel import certify as certification
    from trivsel import upstream

    jobs = [{"code": c, "period": period} for period in p["periods"] for c in p["codes"]]
    measured = upstream.from_context(context, jobs, judged, lanes)
    log.info("run %s: upstream measured: %s", context["run_id"],
             "passed" if measured["passed"] else f"FAILED: {measured.get('reason')}")
    try:
        return certification.certify(p["period"], context["run_id"], periods=p.get("periods"), dbt_tests=measured)
    except certification.CertificationFailed:
        release_build(context["run_id"], "certification refused")  # nothing more of this run builds
        raise


def release_build(run_id: str, how: str) -> bool:
    """Release the run's build lease (trivsel.build_lease): the next run's gate may pin and build."""
    with warehouse.connect(warehouse.LOADER, autocommit=True) as conn:
        return build_lease.release(conn, run_id, how)


class MunicipalitiesNotPublished(_FailWithoutRetry):
    """The run's final verdict: everything else was published, but these municipalities' deliveries were not."""


def not_published(conn, periods: list[str], codes: list[str]) -> dict[str, list[str]]:
    """{municipality: [lines]} for the run's deliveries that stand quarantined or held by the quality gate
    (`waiting` with the gate's reason).

    A quarantine stands unless a later loaded (or since superseded) version of its key replaced it: a version
    that came in a later run (the municipality's correction), or the same file taken again (an interrupted
    load: the warehouse restarted mid-load, cleanup_interrupted quarantined it and the retry loaded it). Another
    file of the same key in the *same* run does not count: a corrupt correction `rettelse_….xlsx` sorted before
    the original it should replace is still the municipality's rejected delivery, whatever the file order."""
    rows = conn.execute(
        """select d.municipality_code, d.source, d.period, d.file_name, d.status, d.delivery_id
             from audit.delivery as d
            where d.period = any(%s) and d.municipality_code = any(%s)
              and (d.status = 'quarantined' or (d.status = 'waiting' and d.reason like 'held by the quality gate%%'))
              and not exists (select 1 from audit.delivery as later
                               where later.municipality_code = d.municipality_code and later.source = d.source
                                 and later.period = d.period and later.scheme is not distinct from d.scheme
                                 and later.delivery_id > d.delivery_id and later.status in ('loaded', 'superseded')
                                 and (d.run_id is null or later.run_id is distinct from d.run_id
                                      or later.checksum_sha256 = d.checksum_sha256))
            order by 1, 2, 3, 6""", (periods, codes)).fetchall()
    out: dict[str, list[str]] = {}
    for code, source, period, file_name, status, did in rows:
        what = "quarantined" if status == "quarantined" else "held by the quality gate"
        out.setdefault(code, []).append(f"{code}/{source}/{period} {file_name} (delivery {did}): {what}")
    return out


def run_outcome(p: dict, context: dict) -> str:
    """The run's last task (trigger rule all_done): fail it, after everything else was published, when a
    municipality's deliveries were quarantined or held, so the run's final state says so (a quarantine fails
    only the municipality's verdict, a leaf of the DAG), or when certify or publish did not succeed (a refused
    certification must not end in a green run)."""
    run_id = context["run_id"]
    ti = context["ti"]
    try:
        states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[run_id]).get(run_id, {})
        return outcome(p, run_id, states)
    finally:  # however the run went: the next run's model build may start
        try:
            release_build(run_id, "run_outcome")
        except psycopg.Error as exc:  # the verdict stands; the lease then expires (settings.build_lease_minutes)
            log.error("run %s: build lease not released (%s); it expires by itself", run_id, exc)


def outcome(p: dict, run_id: str, states: dict[str, str | None]) -> str:
    """run_outcome's verdict from the run's task states and audit.delivery (raises MunicipalitiesNotPublished)."""
    unpublished = [f"{t} is {states.get(t) or 'not run'}" for t in ("certify", "publish") if states.get(t) != "success"]
    from trivsel import lanes
    from trivsel.remote.pull import failures

    with warehouse.connect(warehouse.PUBLISHER, autocommit=True) as conn:  # reads audit only
        missing = not_published(conn, p["periods"], p["codes"])
        pulls = failures(conn, run_id, p["codes"])
        # a load that failed unexpectedly (its lane went on): not published, whatever it left in audit.delivery
        for code, lines in lanes.failures(conn, run_id, p["codes"], kinds=("error",)).items():
            missing.setdefault(code, []).extend(f"{code}/{line}" for line in lines)
    if pulls:  # tolerated (their inboxes were loaded), never silent: named here and by each verdict task
        log.error("run %s: pulling failed for municipalities %s; what their inboxes held was loaded "
                  "(audit.pull_failure; their verdict tasks fail with the errors)", run_id, ", ".join(sorted(pulls)))
    if unpublished:
        raise MunicipalitiesNotPublished(f"run {run_id}: nothing was published ({'; '.join(unpublished)}; see the "
                                         f"certify task's log and certified.publication_log)")
    if missing:
        text = "\n".join(line for code in sorted(missing) for line in missing[code])
        log.error("run %s: municipalities %s not (fully) published:\n%s", run_id, ", ".join(sorted(missing)), text)
        raise MunicipalitiesNotPublished(
            f"run {run_id}: the others were published, but municipalities {', '.join(sorted(missing))} had "
            f"deliveries quarantined or held, or a load that failed (audit.delivery, quarantine.delivery_issue, "
            f"audit.ingest_failure):\n{text}")
    return f"run {run_id}: every municipality's deliveries of {', '.join(p['periods'])} were published"
