"""The pull step: fetch what is new at a municipality's remote locations into its local inbox.

Runs first in the municipality's ingest task (the DAG's one task per municipality and period: pull, then load
the inbox), one municipality and one period at a time. For every source with a remote
`location`, it lists the period's files and skips a file whose name, size and modification time match
what audit.remote_file recorded. Anything else is downloaded next to its inbox destination under a
hidden name (`.partial-...`, which discover() ignores), resumed from where an interrupted attempt
stopped, retried with backoff, checked against the listed size and then checksummed: bytes already
received (recorded, in audit.delivery, or already in the inbox) are not put into the inbox again;
new bytes are renamed into `inbox/<code>/<source>/<period>/<name>` in one step. From there the existing
rails (archive, audit.delivery, raw, GX) take over, so a pulled file loads exactly as a dropped one.

Remote files are deleted only where the source says `delete_after_pull: true`, and only after the
file is in the inbox and recorded. A municipality that has not delivered by its due day is logged,
never failed: municipalities are late. A location that still fails after its attempts is recorded for the
run (audit.pull_failure, record_failures): the inbox is loaded anyway and the municipality's verdict task
fails with the error.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from trivsel import schema, warehouse
from trivsel.config import Config, Municipality, SourceConfig, load_config, validate_period
from trivsel.loading import checksum, inbox_dir, period_lock
from trivsel.remote.base import Location, RemoteError, RemoteFile, Transient, display_location, with_retries
from trivsel.remote.local import folder_of

log = logging.getLogger(__name__)

ATTEMPTS = 4
RETRY_DELAY = 0.5  # seconds before the 2nd attempt; doubles, at most 8 s
TIMEOUT = 30.0  # seconds for connecting and for each read


class RemotePullFailed(RuntimeError):
    """Raised after a municipality's pull when a remote location failed; every other source was pulled."""


@dataclass
class PullReport:
    municipality_code: str
    period: str
    pulled: list[str] = field(default_factory=list)  # "<source>/<remote path>" now in the inbox
    unchanged: list[str] = field(default_factory=list)  # downloaded, but the bytes were already received
    skipped: int = 0  # same name, size and modification time as already pulled: not downloaded
    overdue: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def due_date(period: str, due_day: int) -> date:
    y, m = int(period[:4]), int(period[5:])
    y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return date(y, m, due_day)


def delivery_expected(src: SourceConfig, period: str) -> bool:
    """As marts.delivery_coverage: monthly every period, yearly in YYYY-12, survey waves never by date."""
    if not src.delivers:
        return False
    return src.cadence == "monthly" or (src.cadence == "yearly" and period.endswith("-12"))


def is_local_inbox(muni: Municipality, src: SourceConfig) -> bool:
    if src.location is None:
        return True
    if not src.location.startswith("file:"):
        return False
    folder = folder_of(src.location)
    return folder is None or folder.resolve() == inbox_dir(muni.code, src.source).resolve()


def open_location(muni: Municipality, src: SourceConfig, timeout: float = TIMEOUT) -> Location:
    who = f"municipality {muni.code} ({muni.name}), {src.source}"
    scheme = src.location.split(":", 1)[0]
    if scheme == "sftp":
        from trivsel.remote.sftp import SftpLocation

        return SftpLocation(src.location, src.conn_id, who=who, timeout=timeout)
    if scheme == "https":
        from trivsel.remote.https import HttpsLocation

        return HttpsLocation(src.location, src.conn_id, who=who, timeout=timeout)
    if scheme == "file":
        from trivsel.remote.local import FileLocation

        return FileLocation(src.location, src.conn_id, who=who, timeout=timeout)
    if scheme == "s3":
        from trivsel.remote.s3 import S3Location

        return S3Location(src.location, src.conn_id, who=who, timeout=timeout)
    raise RemoteError(f"{who}: {display_location(src.location)}: {scheme}:// locations are not supported")


def pull_municipality(code: str, period: str, run_id: str | None = None, as_of: date | datetime | None = None,
                      config: Config | None = None, *, attempts: int = ATTEMPTS, delay: float = RETRY_DELAY,
                      timeout: float = TIMEOUT, raise_errors: bool = True) -> PullReport:
    """Pull one municipality's new files for one period; then log every source that is overdue."""
    validate_period(period)
    config = config or load_config()
    muni = config.municipality(code)
    as_of = as_of.date() if isinstance(as_of, datetime) else (as_of or datetime.now(UTC).date())
    report = PullReport(code, period)
    settings = config.settings
    attempts = int(settings.get("remote_attempts", attempts))
    timeout = float(settings.get("remote_timeout_seconds", timeout))
    with warehouse.connect(warehouse.LOADER, autocommit=True) as conn:
        schema.ensure(conn)
        lock = f"trivsel:pull:{code}"
        conn.execute("select pg_advisory_lock(hashtext(%s))", (lock,))
        try:
            # The loaders' lock too (loading.period_lock): a file lands in the inbox's period folder while no
            # ingest of this municipality and period is discovering or loading it.
            with period_lock(conn, code, period):
                for src in muni.sources.values():
                    if not src.delivers or is_local_inbox(muni, src):
                        continue
                    try:
                        with open_location(muni, src, timeout) as loc:
                            _pull_source(conn, muni, src, loc, period, run_id, report, attempts, delay)
                    except RemoteError as exc:
                        report.errors.append(str(exc))
                        log.error("pull failed: %s", exc)
        finally:
            conn.execute("select pg_advisory_unlock(hashtext(%s))", (lock,))
        _check_due(conn, muni, period, as_of, report)
        if run_id is not None:
            record_failures(conn, run_id, code, period, report.errors)
    log.info("pull %s %s: %d new, %d unchanged after download, %d skipped as already pulled, %d errors",
             code, period, len(report.pulled), len(report.unchanged), report.skipped, len(report.errors))
    if report.errors and raise_errors:
        raise RemotePullFailed(f"pulling municipality {code} for {period} failed for "
                               f"{len(report.errors)} location(s):\n" + "\n".join(report.errors))
    return report


def record_failures(conn, run_id: str, code: str, period: str, errors: list[str]) -> None:
    """audit.pull_failure: this pull's errors for the run (none: the row of an earlier attempt goes).

    Why in the warehouse: in the DAG the pull runs inside the municipality's ingest task, which then loads the
    inbox and succeeds; the municipality's verdict task (trivsel.verdict) reads this row and fails with it."""
    with conn.transaction():
        conn.execute("delete from audit.pull_failure where run_id = %s and municipality_code = %s and period = %s",
                     (run_id, code, period))
        if errors:
            conn.execute("insert into audit.pull_failure (run_id, municipality_code, period, errors)"
                         " values (%s, %s, %s, %s)", (run_id, code, period, [warehouse.redact(e) for e in errors]))


def failures(conn, run_id: str, codes: list[str]) -> dict[str, list[str]]:
    """{municipality: ["<period>: <error>", ...]} of the run's failed pulls (audit.pull_failure)."""
    out: dict[str, list[str]] = {}
    for code, period, errors in conn.execute(
            "select municipality_code, period, errors from audit.pull_failure where run_id = %s"
            " and municipality_code = any(%s) order by 1, 2", (run_id, codes)).fetchall():
        out.setdefault(code, []).extend(f"{period}: {e}" for e in errors)
    return out


def _pull_source(conn, muni: Municipality, src: SourceConfig, loc: Location, period: str, run_id: str | None,
                 report: PullReport, attempts: int, delay: float) -> None:
    files = with_retries(lambda: loc.list_period(period), what=f"{loc.who}: {loc.shown}: listing",
                         attempts=attempts, delay=delay)
    log.info("%s: %s lists %d file(s) for %s", loc.who, loc.shown, len(files), period)
    names = set()
    for f in files:
        if f.name in names:
            raise loc.error(f"two files named {f.name} for {period} (in the folder and in {period}/)")
        names.add(f.name)
        _pull_file(conn, muni, src, loc, f, run_id, report, attempts, delay)


def _pull_file(conn, muni: Municipality, src: SourceConfig, loc: Location, f: RemoteFile, run_id: str | None,
               report: PullReport, attempts: int, delay: float) -> None:
    key = (muni.code, src.source, loc.shown, f.path)
    row = conn.execute(
        "select size_bytes, modified_at, checksum_sha256 from audit.remote_file"
        " where municipality_code = %s and source = %s and location = %s and remote_path = %s", key).fetchone()
    if row and row[0] == f.size and row[1] == f.modified:
        report.skipped += 1
        log.debug("%s: %s unchanged since it was pulled", loc.who, f.path)
        return

    dest_dir = inbox_dir(muni.code, src.source) / f.period
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / f.name
    stamp = f"{int(f.modified.timestamp()) if f.modified else 0}-{f.size}"
    partial = dest_dir / f".partial-{stamp}-{f.name}"
    for stale in dest_dir.glob(f".partial-*-{f.name}"):
        if stale != partial:  # an interrupted download of an earlier version of the file
            stale.unlink()

    def attempt() -> None:
        have = partial.stat().st_size if partial.exists() else 0
        if have > f.size:
            partial.unlink()
            have = 0
        if have == f.size and f.size:
            return
        if have:
            log.info("%s: resuming %s at byte %d of %d", loc.who, f.path, have, f.size)
        with partial.open("ab") as out:
            for chunk in loc.read(f, have):
                have += len(chunk)
                if have > f.size:
                    out.close()
                    partial.unlink()
                    raise loc.error(f"the listing says {f.path} has {f.size} bytes, the server sends more: "
                                    "the listing lies about its size")
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if have < f.size:
            raise Transient(f"the server sent {have} of the {f.size} bytes "
                            "the listing announced")

    with_retries(attempt, what=f"{loc.who}: {loc.shown}: {f.path}", attempts=attempts, delay=delay)
    digest, size = checksum(partial)

    already = None
    if row and row[2] == digest:
        already = "the same bytes were pulled before"
    elif conn.execute("select 1 from audit.delivery where municipality_code = %s and source = %s and period = %s"
                      " and file_name = %s and checksum_sha256 = %s limit 1",
                      (muni.code, src.source, f.period, f.name, digest)).fetchone():
        already = "the same bytes were delivered before"
    elif dest.exists() and checksum(dest)[0] == digest:
        already = "the same bytes are in the inbox"
    if already:
        partial.unlink()
        status = "unchanged"
        report.unchanged.append(f"{src.source}/{f.path}")
        log.info("%s: %s changed its time stamp only: %s", loc.who, f.path, already)
    else:
        os.replace(partial, dest)  # atomic: discover() sees the whole file or none of it
        status = "pulled"
        report.pulled.append(f"{src.source}/{f.path}")
        log.info("%s: pulled %s (%d bytes, sha256 %s) into %s", loc.who, f.path, size, digest[:12], dest)
    conn.execute(
        """insert into audit.remote_file (municipality_code, source, location, remote_path, period, size_bytes,
               modified_at, checksum_sha256, status, local_path, run_id)
           values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
           on conflict (municipality_code, source, location, remote_path) do update set
               period = excluded.period, size_bytes = excluded.size_bytes, modified_at = excluded.modified_at,
               checksum_sha256 = excluded.checksum_sha256, status = excluded.status,
               local_path = excluded.local_path, run_id = excluded.run_id, pulled_at = now()""",
        (*key, f.period, size, f.modified, digest, status, str(dest), run_id))
    if src.delete_after_pull:
        loc.delete(f)
        log.info("%s: deleted %s on the remote side (delete_after_pull)", loc.who, f.path)


def _check_due(conn, muni: Municipality, period: str, as_of: date, report: PullReport) -> None:
    for src in muni.sources.values():
        if src.due_day is None or not delivery_expected(src, period):
            continue
        due = due_date(period, src.due_day)
        folder: Path = inbox_dir(muni.code, src.source) / period
        in_inbox = folder.is_dir() and any(p.is_file() and not p.name.startswith(".") for p in folder.iterdir())
        loaded = conn.execute("select 1 from audit.delivery where municipality_code = %s and source = %s"
                              " and period = %s and status = 'loaded' limit 1",
                              (muni.code, src.source, period)).fetchone()
        if in_inbox or loaded:
            continue
        where = display_location(src.location) if src.location else "the local inbox"
        if as_of > due:
            msg = (f"OVERDUE: municipality {muni.code} ({muni.name}) has not delivered {src.source} for {period}; "
                   f"it was due by {due.isoformat()} ({where}). Not a failure: marts.delivery_coverage shows "
                   "it as overdue until it arrives.")
            report.overdue.append(src.source)
            log.warning(msg)
        else:
            log.info("municipality %s has not delivered %s for %s yet; due by %s (%s)", muni.code, src.source,
                     period, due.isoformat(), where)
