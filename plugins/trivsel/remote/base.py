"""What every remote location has in common: its files, how a file maps to a period, errors, retries.

A location lists the files of one period (`list_period`) and reads one of them from a byte offset
(`read`), so an interrupted transfer resumes where it stopped. Credentials come only from the Airflow
connection named by the source's `conn_id`; the location itself never carries any, and messages name the
location without its query string.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

log = logging.getLogger(__name__)

#: A period folder (`2012-05/`) or a period in the file name (`fravaer_2012-05.csv`, `2012-05_x.csv`).
PERIOD_DIR_RE = re.compile(r"^(?:19|20)\d{2}-(?:0[1-9]|1[0-2])$")
PERIOD_NAME_RE = re.compile(r"(?:^|_)((?:19|20)\d{2}-(?:0[1-9]|1[0-2]))(?=[._]|$)")


def period_of(remote_path: str) -> str | None:
    """The period a remote file belongs to: its parent folder if that is `YYYY-MM`, else a `YYYY-MM`
    in its name (after `_` or at the start, before `.`/`_`/the end). None: the file carries no period."""
    parts = [p for p in remote_path.split("/") if p]
    if len(parts) >= 2 and PERIOD_DIR_RE.match(parts[-2]):
        return parts[-2]
    m = PERIOD_NAME_RE.search(parts[-1] if parts else "")
    return m.group(1) if m else None


def display_location(location: str) -> str:
    """The location as it may appear in logs and messages: no user info, no query string, no fragment."""
    p = urlsplit(location)
    host = p.hostname or ""
    if p.port:
        host += f":{p.port}"
    return urlunsplit((p.scheme, host, p.path, "", ""))


@dataclass(frozen=True)
class RemoteFile:
    path: str  # relative to the location, '/'-separated (e.g. '2012-05/fravaer_2012-05.csv')
    size: int
    modified: datetime | None
    period: str | None
    url: str | None = None  # where to download it, for listings that say so

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


class RemoteError(RuntimeError):
    """A remote location failed in a way a retry will not mend (refused, credentials, missing folder,
    a listing that lies). The message names municipality and location, never a secret."""


class Transient(Exception):
    """A failure worth retrying (timeout, reset connection, 5xx, truncated body). Internal."""


class Location:
    """One source's remote location. Subclasses: SftpLocation, HttpsLocation, FileLocation."""

    scheme = ""

    def __init__(self, location: str, conn_id: str | None, *, who: str, timeout: float = 30.0):
        self.location = location
        self.conn_id = conn_id
        self.who = who  # "municipality 169 (Høje-Taastrup), hr_absence"
        self.timeout = timeout
        self.shown = display_location(location)

    def error(self, what: str) -> RemoteError:
        return RemoteError(f"{self.who}: {self.shown}: {what}")

    def list_period(self, period: str) -> list[RemoteFile]:
        raise NotImplementedError

    def read(self, f: RemoteFile, offset: int) -> Iterator[bytes]:
        """The bytes of f from offset on. Raises Transient for what a retry may mend."""
        raise NotImplementedError

    def delete(self, f: RemoteFile) -> None:
        raise self.error("deleting remote files is not supported for this kind of location")

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


T = TypeVar("T")


def with_retries(fn: Callable[[], T], *, what: str, attempts: int = 4, delay: float = 0.5,
                 max_delay: float = 8.0, sleep: Callable[[float], None] = time.sleep) -> T:
    """Call fn until it does not raise Transient, waiting delay, 2·delay, ... (at most max_delay) between
    tries. After the last try the Transient's message becomes a RemoteError."""
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except Transient as exc:
            if attempt == attempts:
                raise RemoteError(f"{what}: gave up after {attempts} attempts: {exc}") from None
            wait = min(max_delay, delay * 2 ** (attempt - 1))
            log.warning("%s: %s; attempt %d of %d, retrying in %.1fs", what, exc, attempt, attempts, wait)
            sleep(wait)
    raise AssertionError("unreachable")
