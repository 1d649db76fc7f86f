"""From a municipal inbox to raw: discover, archive, register, parse, COPY, validate, decide.

Every file is archived as received, with its SHA-256, before anything else happens. Its rows are
COPYed under a new delivery_id while the delivery is `validating` (staging reads only `loaded`
deliveries, so nothing half-checked is ever visible). Then, in one transaction, it becomes `loaded`
and replaces the previous delivery of the same municipality, source, period and scheme, or it becomes
`quarantined` with every reason, and its raw rows are removed. A delivery that refers to another
delivery not loaded yet (a case review without its registry export) becomes `waiting` instead, and loads
when its partner does (trivsel.consistency).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import psycopg
from psycopg import sql

from trivsel import consistency, schema, settings, warehouse
from trivsel.config import PERIOD_RE, Config, Municipality, load_config, validate_period
from trivsel.privacy import describe_exception, mask_free_text, mask_identifiers, mask_value
from trivsel.sources import bulk, get_scheme
from trivsel.sources.base import DeliveryContext, FileRejected, RowIssue

log = logging.getLogger(__name__)

PERIOD_DIR_RE = re.compile(r"^\d{4}-\d{2}$")
SPOOL_IN_MEMORY = 32 * 1024 * 1024
COPY_CHUNK = 1024 * 1024
SPOOL_BATCH = 2000  # rows per write into the spool
ANALYZE_FROM_ROWS = 1000  # a delivery this big gets fresh planner statistics before GX


@dataclass
class Outcome:
    municipality_code: str
    source: str
    period: str
    file_name: str
    status: str  # loaded | waiting | quarantined | duplicate | unchanged | unroutable
    scheme: str | None = None
    delivery_id: int | None = None
    rows: int = 0
    reason: str | None = None
    issues: list[RowIssue] = field(default_factory=list)

    def line(self) -> str:
        text = (f"{self.municipality_code}/{self.source}/{self.period} {self.file_name}: {self.status}"
                f" ({self.scheme or 'no scheme'}, {self.rows} rows)")
        if self.reason:
            text += f" — {self.reason}"
        return text


# ---------------------------------------------------------------- discovery


def inbox_dir(code: str, source: str) -> Path:
    return settings.inbox_root() / code / source


def period_lock_name(code: str, period: str) -> str:
    return f"trivsel:ingest:{code}:{period}"


@contextmanager
def period_lock(conn: psycopg.Connection, code: str, period: str) -> Iterator[None]:
    """The one lock every path that loads a municipality's period takes (the DAG's ingest, `trivsel load`,
    backfills, the remote pull writing into the inbox): a session-level advisory lock, so two loads of one
    municipality and period never interleave, whatever process or connection they run in. Re-entrant on the
    same connection (PostgreSQL counts a session's advisory locks), so a path that holds it may call another
    that takes it again."""
    name = period_lock_name(code, period)
    conn.execute("select pg_advisory_lock(hashtext(%s))", (name,))
    try:
        yield
    finally:
        conn.execute("select pg_advisory_unlock(hashtext(%s))", (name,))


def holds_period_lock(conn: psycopg.Connection, code: str, period: str) -> bool:
    """True when this connection's session holds period_lock(code, period) (pg_locks: a one-bigint advisory
    key is split into classid, the high 32 bits, and objid, the low 32 bits, with objsubid 1)."""
    row = conn.execute(
        """select exists (select 1 from pg_locks where locktype = 'advisory' and pid = pg_backend_pid()
                            and granted and objsubid = 1
                            and classid::bigint = ((hashtext(%(n)s)::bigint >> 32) & 4294967295)
                            and objid::bigint = (hashtext(%(n)s)::bigint & 4294967295))""",
        {"n": period_lock_name(code, period)}).fetchone()
    return bool(row[0])


def discover(conn: psycopg.Connection, code: str, period: str) -> list[tuple[str, Path]]:
    """The files of one municipality for one period, per source. Called under period_lock(code, period).

    A file dropped straight into the source folder belongs to the first run that sees it: it is moved
    into that run's period folder, so a later run of another period does not take it again. Ingests of
    other periods of the same municipality sweep the same undated files at the same moment, so the move
    takes a lock per municipality too, and a file another run moved first is simply not there any more.
    """
    validate_period(period)
    if not holds_period_lock(conn, code, period):
        raise RuntimeError(f"discover({code}, {period}) needs period_lock({code}, {period}) held")
    found: list[tuple[str, Path]] = []
    for source in settings.SOURCES:
        folder = inbox_dir(code, source)
        if not folder.is_dir():
            continue
        if any(p.is_file() and not p.name.startswith(".") for p in folder.iterdir()):
            with conn.transaction():
                conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (f"trivsel:undated:{code}",))
                undated = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
                target = folder / period
                if undated:
                    target.mkdir(exist_ok=True)
                for p in undated:
                    dest = target / p.name
                    try:
                        os.replace(p, dest)
                    except FileNotFoundError:  # another process took it into its own period first
                        continue
                    log.info("undated file %s taken into period %s", p, period)
        pdir = folder / period
        if pdir.is_dir():
            for p in sorted(pdir.iterdir()):
                if p.is_file() and not p.name.startswith("."):
                    found.append((source, p))
    return found


# A file the layout <code>/<source>/<YYYY-MM>/<file> cannot route is never left lying unseen: it is archived
# with its checksum and recorded in audit.delivery as `unroutable`, with why (municipality_code, source and
# period are null where its place names none of them), and logged.


@dataclass(frozen=True)
class Unroutable:
    path: Path
    code: str | None
    source: str | None
    period: str | None
    reason: str


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _files_under(folder: Path, root: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not _hidden(p, root))


def find_unroutable(codes: Iterable[str], only_code: str | None = None) -> list[Unroutable]:
    """Every file of the inbox (or of one municipality's folder) that discover() would never take."""
    root = settings.inbox_root()
    if not root.is_dir():
        return []
    known = set(codes)
    sources = ", ".join(settings.SOURCES)
    found: list[Unroutable] = []

    def add_all(folder: Path, code, source, period, reason: str) -> None:
        found.extend(Unroutable(f, code, source, period, reason) for f in _files_under(folder, root))

    for top in sorted(root.iterdir()):
        if top.name.startswith(".") or (only_code is not None and top.name != only_code):
            continue
        if top.is_file():
            found.append(Unroutable(top, None, None, None, "a file straight in the inbox, outside any "
                                                           "municipality folder"))
            continue
        if top.name not in known:
            add_all(top, None, None, None, f"municipality folder {top.name!r} is no municipality in "
                                           f"config/municipalities.yml")
            continue
        for src in sorted(top.iterdir()):
            if src.name.startswith("."):
                continue
            if src.is_file():
                found.append(Unroutable(src, top.name, None, None, f"a file straight in the municipality "
                                        f"folder, outside any source folder ({sources})"))
            elif src.name not in settings.SOURCES:
                add_all(src, top.name, None, None, f"source folder {src.name!r} is no source ({sources})")
            else:
                for pdir in sorted(src.iterdir()):
                    if pdir.name.startswith(".") or pdir.is_file():
                        continue  # a file straight in the source folder: discover() takes it into a period
                    if not PERIOD_RE.match(pdir.name):
                        add_all(pdir, top.name, src.name, None, f"period folder {pdir.name!r} is not a "
                                                                f"period YYYY-MM (month 01-12)")
                        continue
                    for sub in sorted(pdir.iterdir()):
                        if sub.is_dir() and not sub.name.startswith("."):
                            add_all(sub, top.name, src.name, pdir.name, f"in the sub-folder {sub.name!r} of the "
                                    f"period folder; a delivery lies directly in <code>/<source>/<YYYY-MM>/")
    return found


def record_unroutable(conn: psycopg.Connection, codes: Iterable[str], only_code: str | None = None,
                      run_id: str | None = None) -> list[Outcome]:
    """Archive and register every unroutable file not registered before at the same place with the same
    bytes. Under a lock: the mapped ingests of one municipality's periods sweep the same folders."""
    root = settings.inbox_root()
    outcomes: list[Outcome] = []
    for u in find_unroutable(codes, only_code):
        relative = u.path.relative_to(root).as_posix()
        digest, size = checksum(u.path)
        dest_dir = settings.archive_root() / "_unroutable" / u.path.parent.relative_to(root)
        archived = archive_to(u.path, dest_dir, digest)
        reason = f"unroutable {relative}: {u.reason}"
        with conn.transaction():
            conn.execute("select pg_advisory_xact_lock(hashtext('trivsel:unroutable'))")
            if conn.execute("select 1 from audit.delivery where status = 'unroutable' and archive_path = %s",
                            (str(archived),)).fetchone():
                continue
            did = _register(conn, code=u.code, source=u.source, period=u.period, scheme=None, path=u.path,
                            digest=digest, size=size, archived=archived, run_id=run_id, status="unroutable",
                            reason=reason)
        log.warning("unroutable file %s (sha256 %s, %d bytes) archived as delivery %s: %s", relative,
                    digest[:12], size, did, u.reason)
        outcomes.append(Outcome(u.code or "?", u.source or "?", u.period or "?", u.path.name, "unroutable",
                                None, did, reason=reason))
    return outcomes


def periods_with_deliveries() -> list[str]:
    root = settings.inbox_root()
    periods = set()
    if root.is_dir():
        for p in root.glob("*/*/*"):
            if p.is_dir() and PERIOD_DIR_RE.match(p.name) and any(p.iterdir()):
                periods.add(p.name)
    return sorted(periods)


# ---------------------------------------------------------------- archive


def checksum(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(COPY_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def archive(path: Path, code: str, source: str, period: str, digest: str) -> Path:
    """Copy the file as received into the archive: temporary name, then rename, so never half there."""
    return archive_to(path, settings.archive_root() / code / source / period, digest)


def archive_to(path: Path, dest_dir: Path, digest: str) -> Path:
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / f"{digest[:16]}__{path.name}"
    if not dest.exists():
        fd, tmp = tempfile.mkstemp(dir=dest_dir, prefix=".incoming-")
        os.close(fd)
        shutil.copyfile(path, tmp)
        os.replace(tmp, dest)
    return dest


# ---------------------------------------------------------------- COPY text format

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_SPECIAL = re.compile("[\\\\\t\n\r\x00]")


def _copy_value(v) -> str:
    if type(v) is str:  # the common case first; most values need no escaping at all
        return v.replace("\x00", "").translate(_ESCAPES) if _SPECIAL.search(v) else v
    if v is None:
        return "\\N"
    if isinstance(v, bool):
        return "t" if v else "f"
    if isinstance(v, (int, float, Decimal)):
        return str(v)
    if isinstance(v, (date, datetime)):
        return v.isoformat()
    return str(v).replace("\x00", "").translate(_ESCAPES)


class _ParserContractError(Exception):
    """A parser yielded something the scheme does not declare (a bug in the scheme module)."""


class _Spool:
    """Rows of one raw table in COPY text form, in memory up to a bound and on disk beyond it."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.fh = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY, mode="w+b")
        self.rows = 0
        self._lines: list[str] = []  # a few thousand lines, written to fh in one go (less per-row overhead)

    def add(self, row: Iterable) -> None:
        self._lines.append(self.prefix + "\t".join(map(_copy_value, row)) + "\n")
        self.rows += 1
        if len(self._lines) >= SPOOL_BATCH:
            self._flush()

    def _flush(self) -> None:
        if self._lines:
            self.fh.write("".join(self._lines).encode("utf-8"))
            self._lines.clear()

    def chunks(self):
        self._flush()
        self.fh.seek(0)
        while chunk := self.fh.read(COPY_CHUNK):
            yield chunk

    def close(self) -> None:
        self.fh.close()


# ---------------------------------------------------------------- one file


def _register(conn, *, code, source, period, scheme, path, digest, size, archived, run_id, status,
              reason=None) -> int:
    row = conn.execute(
        """insert into audit.delivery (municipality_code, source, scheme, period, file_name, checksum_sha256,
               size_bytes, archive_path, status, reason, run_id, decided_at)
           values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
                   case when %s <> 'validating' then now() end)
           returning delivery_id""",
        (code, source, scheme, period, path.name, digest, size, str(archived), status,
         mask_identifiers(reason, keep=(path.name,)), run_id, status),  # readers see the reason
    ).fetchone()
    return row[0]


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


def _is_connection_error(exc: BaseException) -> bool:
    """True for a lost or refused database connection (psycopg's or SQLAlchemy's, as GX raises it)."""
    seen = 0
    while exc is not None and seen < 10:
        name = type(exc).__name__
        if isinstance(exc, psycopg.OperationalError) or name in ("OperationalError", "InterfaceError"):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def ingest_file(conn: psycopg.Connection, path: Path, muni: Municipality, source: str, period: str,
                run_id: str | None = None, key: bytes | None = None) -> Outcome:
    """Take one delivered file all the way to `loaded` or `quarantined`, under period_lock (taken here too,
    so no caller can load without it; a caller that already holds it just nests)."""
    with period_lock(conn, muni.code, period):
        return _ingest_file(conn, path, muni, source, period, run_id, key)


def _ingest_file(conn: psycopg.Connection, path: Path, muni: Municipality, source: str, period: str,
                 run_id: str | None, key: bytes | None) -> Outcome:
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
        issues = readable_issues(issues, path.name)
        summary = _quarantine(conn, did, path.name, tables, issues)
        log.warning("quarantined %s/%s/%s %s: %s", code, source, period, path.name, summary)
        return Outcome(code, source, period, path.name, "quarantined", scheme_name, did, reason=summary,
                       issues=[RowIssue(r, c, m, v) for r, c, _k, m, v in issues])

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

    from trivsel.validation import validate_delivery

    t_loaded = time.time()
    params = {"period": period, "municipality_code": code, "year": ctx.year, "unit_names": ctx.unit_names}
    try:
        failures = validate_delivery(warehouse.url(role=warehouse.LOADER), did, tables, params)
    except Exception as exc:  # noqa: BLE001 - a broken suite must not leave the delivery 'validating'
        if _is_connection_error(exc):
            raise  # the warehouse went away: the task retries, and the stale 'validating' row is cleaned up
        log.error("Great Expectations failed on delivery %s: %s", did, describe_exception(exc))
        return reject([(None, None, "gx_error", f"validation could not run: {type(exc).__name__}: "
                                                 f"{str(exc)[:300]}", None)], tables)
    if failures:
        return reject([(None, f.column, f"gx:{f.expectation}", f"{f.table}: {f.reason}", f.examples)
                       for f in failures], tables)

    t_validated = time.time()
    # Cross-delivery consistency (trivsel.consistency): against what is loaded, in one transaction with the
    # decision, so a partner loading at the same moment in another task is seen either before or after.
    # Supersession is decided here, from the current state of the key (its rows locked), not from what
    # _known_delivery saw before the load: a version loaded meanwhile with the same bytes makes this one a
    # duplicate; any other loaded version is superseded by this one in the same transaction.
    with conn.transaction():
        current = conn.execute(
            """select delivery_id, checksum_sha256, status,
                      exists (select 1 from quarantine.delivery_issue i where i.delivery_id = d.delivery_id
                                 and i.check_name in ('interrupted', 'parser_error', 'reprocess')) as retake
                 from audit.delivery d
                where municipality_code = %s and source = %s and period = %s and scheme = %s
                  and status in ('loaded', 'waiting') and delivery_id <> %s
                order by delivery_id for update of d""", (code, source, period, scheme.name, did)).fetchall()
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
            verdict = consistency.check(conn, did, scheme.name, muni, period, total)
            if verdict.status == "waiting":
                consistency.mark_waiting(conn, did, verdict.reason, total)
            elif verdict.status == "loaded":
                consistency.mark_loaded(conn, did, total)
    if verdict is None:
        log.info("duplicate %s/%s/%s %s as delivery %s: %s", code, source, period, path.name, did, reason)
        return Outcome(code, source, period, path.name, "duplicate", scheme.name, did, reason=reason)
    if verdict.status == "quarantined":
        return reject([(None, None, "consistency", verdict.reason, None)], tables)
    if verdict.status == "waiting":
        log.warning("waiting %s/%s/%s %s as delivery %s (%d rows kept, not visible): %s", code, source, period,
                    path.name, did, total, verdict.reason)
        return Outcome(code, source, period, path.name, "waiting", scheme.name, did, rows=total,
                       reason=verdict.reason)
    log.info("loaded %s/%s/%s %s as delivery %s: %d rows", code, source, period, path.name, did, total)
    # Stage timings (read by trivsel.bench): epoch start, then seconds for checksum+archive+register,
    # parse+COPY, Great Expectations, and the decision.
    log.info("timing %s/%s %s delivery %s: start %.3f archive %.3fs load %.3fs gx %.3fs decide %.3fs rows %d bytes %d",
             code, source, path.name, did, t_start, t_archived - t_start, t_loaded - t_archived,
             t_validated - t_loaded, time.time() - t_validated, total, size)
    return Outcome(code, source, period, path.name, "loaded", scheme.name, did, rows=total)


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
    match = conn.execute(
        f"""select delivery_id, status from audit.delivery d
            where municipality_code = %s and source = %s and period = %s and checksum_sha256 = %s
              and status in ('loaded', 'superseded') and {decided}
            order by status = 'loaded' desc, delivery_id desc limit 1""", (code, source, period, digest)).fetchone()
    if match is None:
        return None
    return ("duplicate" if match[1] == "loaded" else "revert"), match[0], match[1]


def _unaccounted(ctx: DeliveryContext, loaded: set[tuple[str, int]]) -> list[tuple]:
    """Rows read = rows in raw + rows quarantined. For a file without issues (one with issues is quarantined
    whole), a data row the parser read that is not in raw (or a row it yielded without reading it) is a
    parser bug, never a silent loss. check_name 'parser_error', so
    the next run takes the file again once the scheme is fixed."""
    lost = sorted(ctx.rows_read - loaded)
    unread = sorted(loaded - ctx.rows_read)
    out = [(row, None, "parser_error", f"{part} row {row} was read but neither loaded nor rejected "
                                       f"(a parser bug: rows read must equal rows in raw plus rows quarantined)",
            None) for part, row in lost[:100]]
    out += [(row, None, "parser_error", f"{part} row {row} was loaded but never read (a parser bug)", None)
            for part, row in unread[:100]]
    return out


def _load_parsed(conn, path: Path, module, ctx: DeliveryContext, did: int, reject, tables: list[str]):
    """The reference path: the scheme's Python parser, spooled in COPY text form, then one COPY per table.
    Returns the rows loaded, or the quarantine Outcome."""
    scheme = module.scheme
    code, period = ctx.municipality_code, ctx.period
    spools = {t.name: _Spool(f"{did}\t{code}\t{period}\t") for t in scheme.tables}
    widths = {t.name: len(t.columns) for t in scheme.tables}
    accounted: set[tuple[str, int]] | None = set() if scheme.accounts_rows else None
    part_at = {t.name: t.column_names.index(t.part_column) if t.part_column else None for t in scheme.tables}
    try:
        try:
            for table, row in module.parse(path, ctx):
                if table not in spools or len(row) != widths[table]:
                    raise _ParserContractError(
                        f"parser yielded a row for {table!r} with {len(row)} values; the scheme declares "
                        + (f"{widths[table]} columns" if table in widths else f"the tables {tables}"))
                spools[table].add(row)
                if accounted is not None:
                    i = part_at[table]
                    accounted.add((table if i is None else row[i], row[0]))
        except FileRejected as exc:
            return reject([(exc.row, exc.column, "parse", exc.reason, None)], tables)
        except Exception as exc:  # noqa: BLE001 - any parser failure quarantines the file, never loses it
            # A parser bug or a file shape nobody foresaw (csv.Error, zipfile.BadZipFile, InvalidOperation,
            # RecursionError, ...): still a clear quarantine. check_name 'parser_error' lets the next run try
            # the same file again (after a fix) instead of calling it unchanged.
            log.error("parser %s failed on %s: %s", scheme.name, path.name,
                      describe_exception(exc, keep=(path.name,)))
            return reject([(None, None, "parser_error", f"unreadable as {scheme.name}: {type(exc).__name__}: "
                                                         f"{str(exc)[:300]}", None)], tables)
        if accounted is not None and not ctx.issues:  # with issues, the whole file is quarantined anyway
            lost = _unaccounted(ctx, accounted)
            if lost:
                return reject(lost, tables)
        if ctx.issues:
            return reject([(i.row, i.column, "parse", i.reason, i.value) for i in ctx.issues], tables)
        total = sum(s.rows for s in spools.values())
        if total == 0:
            return reject([(None, None, "parse", "the file has no data rows", None)], tables)
        try:
            with conn.transaction():
                for t in scheme.tables:
                    spool = spools[t.name]
                    if not spool.rows:
                        continue
                    cols = [n for n, _ in schema.LOAD_COLUMNS] + t.column_names
                    stmt = sql.SQL("copy raw.{} ({}) from stdin").format(
                        sql.Identifier(t.name), sql.SQL(", ").join(map(sql.Identifier, cols)))
                    with conn.cursor() as cur, cur.copy(stmt) as copy:
                        for chunk in spool.chunks():
                            copy.write(chunk)
                    if t.free_text_columns:  # before the commit: no other session sees them clear
                        mask_free_text(conn, t.name, t.free_text_columns, did)
            # Fresh statistics before GX: without them the planner takes a new delivery_id for one row and
            # GX's uniqueness checks become nested loops (measured: 2 s -> 195 s for a 41,000-row delivery).
            for t in scheme.tables:
                if spools[t.name].rows >= ANALYZE_FROM_ROWS:
                    conn.execute(sql.SQL("analyze raw.{}").format(sql.Identifier(t.name)))
        except psycopg.errors.DataError as exc:
            return reject([(None, None, "copy", f"a value does not fit its column: "
                                                 f"{str(exc).splitlines()[0]}", None)], tables)
    finally:
        for s in spools.values():
            s.close()

    return total


def _load_bulk(conn, path: Path, module, ctx: DeliveryContext, did: int, reject, tables: list[str], size: int):
    """The set-based path (trivsel.sources.bulk) for large files of schemes that offer one. Returns the rows
    loaded, the quarantine Outcome, or None when the Python parser must take the file."""
    make_plan = module.bulk_plan
    smallest = bulk.threshold()
    if make_plan is None or smallest is None or size < smallest:
        return None
    scheme = module.scheme
    try:
        plan = make_plan(path, ctx)
    except FileRejected as exc:
        return reject([(exc.row, exc.column, "parse", exc.reason, None)], tables)
    except Exception as exc:  # noqa: BLE001 - the parser decides what is wrong with a file the plan cannot read
        log.error("bulk plan of %s failed on %s; the Python parser takes it: %s", scheme.name, path.name,
                  describe_exception(exc, keep=(path.name,)))
        return None
    if plan is None:
        return None
    try:
        with conn.transaction():
            result = bulk.run(conn, path, scheme, plan, delivery_id=did, municipality_code=ctx.municipality_code,
                              period=ctx.period, max_issues=ctx.max_issues)
            for t in scheme.tables:  # before the commit: no other session sees them clear
                if t.free_text_columns and result.rows.get(t.name):
                    mask_free_text(conn, t.name, t.free_text_columns, did)
    except bulk.BulkFallback as exc:
        log.info("%s: the Python parser takes it (%s)", path.name, mask_identifiers(str(exc), keep=(path.name,)))
        return None
    if result.issues:
        return reject([(i.row, i.column, "parse", i.reason, i.value) for i in result.issues], tables)
    total = sum(result.rows.values())
    if total == 0:
        return reject([(None, None, "parse", "the file has no data rows", None)], tables)
    for t in scheme.tables:
        if result.rows.get(t.name, 0) >= ANALYZE_FROM_ROWS:
            conn.execute(sql.SQL("analyze raw.{}").format(sql.Identifier(t.name)))
    log.info("%s: loaded set-based (bulk path), %d rows", path.name, total)
    return total


# ---------------------------------------------------------------- one municipality, one period


def ingest_municipality(code: str, period: str, run_id: str | None = None,
                        config: Config | None = None) -> list[Outcome]:
    """Everything one municipality delivered for one period. Holds period_lock from discovery (undated
    files moved into the period) to the last decision, so two loads of the same municipality and period
    never interleave, whatever path started them: the second waits, then finds nothing new."""
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
            cleanup_interrupted(conn, code, period, run_id)
            outcomes += record_unroutable(conn, config.codes, only_code=code, run_id=run_id)
            for source, path in files:
                outcomes.append(ingest_file(conn, path, muni, source, period, run_id, key))
            reevaluate(conn, muni, period, outcomes)
    return outcomes


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


def cleanup_interrupted(conn: psycopg.Connection, code: str, period: str, run_id: str | None = None) -> list[int]:
    """Deliveries of this municipality and period still `validating`: a load that died (killed, server gone)
    between registering and deciding. Called under period_lock, so no live load owns them. Their raw
    rows (if a COPY had committed) are removed and they become `quarantined` with check 'interrupted', in
    one transaction; the file itself is then taken again by this run, since 'interrupted' is no decision."""
    if not holds_period_lock(conn, code, period):
        raise RuntimeError(f"cleanup_interrupted({code}, {period}) needs period_lock({code}, {period}) held: "
                           "without it, a live load's delivery would be taken for an interrupted one")
    stale = [r[0] for r in conn.execute(
        "select delivery_id from audit.delivery where municipality_code = %s and period = %s"
        " and status = 'validating' order by delivery_id", (code, period))]
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


def sync_config(config: Config | None = None) -> None:
    """Write config/municipalities.yml into raw.config_* so dbt models can join it."""
    config = config or load_config()
    with warehouse.connect(warehouse.LOADER, autocommit=True) as conn:
        schema.ensure(conn)
        with conn.transaction():
            conn.execute("delete from raw.config_municipality; delete from raw.config_unit;"
                         " delete from raw.config_source; delete from raw.config_survey_round;"
                         " delete from raw.config_setting")
            with conn.cursor() as cur:
                with cur.copy("copy raw.config_municipality from stdin") as copy:
                    for m in config.municipalities:
                        copy.write_row((m.code, m.name))
                with cur.copy("copy raw.config_unit from stdin") as copy:
                    for m in config.municipalities:
                        for u in m.units:
                            copy.write_row((m.code, u["name"], u.get("valid_from"), u.get("valid_to")))
                with cur.copy("copy raw.config_source (municipality_code, source, cadence, delivers, schemes,"
                              " due_day) from stdin") as copy:
                    for m in config.municipalities:
                        for s in m.sources.values():
                            copy.write_row((m.code, s.source, s.cadence, s.delivers,
                                            ",".join(r.scheme for r in s.schemes) or None, s.due_day))
                with cur.copy("copy raw.config_survey_round (round_name, round_order, municipality_code, wave)"
                              " from stdin") as copy:
                    for row in config.round_months():
                        copy.write_row(row)
                with cur.copy("copy raw.config_setting (setting_name, setting_value) from stdin") as copy:
                    for name, value in config.settings.items():
                        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
                            copy.write_row((name, str(value)))
                        elif isinstance(value, list) and all(isinstance(v, (str, int)) for v in value):
                            # a list (baseline_years: [2010, 2011, 2012]) as '2010,2011,2012'; dbt's macro
                            # configured_years reads it back as an array
                            copy.write_row((name, ",".join(str(v) for v in value)))


def record_period_run(period: str, run_id: str, finished: bool = False, as_of: date | None = None) -> None:
    """as_of: the run's date (its logical date), the "now" that marts.delivery_coverage judges overdue by."""
    with warehouse.connect(warehouse.LOADER, autocommit=True) as conn:
        schema.ensure(conn)
        if finished:
            conn.execute("update audit.period_run set finished_at = now() where period = %s and run_id = %s",
                         (period, run_id))
        else:
            conn.execute("insert into audit.period_run (period, run_id, as_of) values (%s, %s,"
                         " coalesce(%s, current_date)) on conflict do nothing", (period, run_id, as_of))


def summary_text(outcomes: list[Outcome]) -> str:
    return "\n".join(o.line() for o in outcomes) or "no deliveries"
