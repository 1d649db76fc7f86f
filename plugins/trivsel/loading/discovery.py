"""Discovery: where a municipality's deliveries lie, the period lock every load takes, and the files that
lie where no load will ever take them (unroutable: archived and registered, never left unseen).

Its own module because it is the only part of the loader that reads the inbox's layout
(<code>/<source>/<YYYY-MM>/<file>); `trivsel.remote.pull` and the CLI take the lock and the inbox folder
from here without pulling in parsing or validation.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from trivsel import settings
from trivsel.config import PERIOD_RE, validate_period
from trivsel.loading.archiving import _register, archive_to, checksum
from trivsel.loading.outcome import Outcome

log = logging.getLogger(__name__)

PERIOD_DIR_RE = re.compile(r"^\d{4}-\d{2}$")


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

