"""`file:///path`: a folder on this machine or a mounted share, laid out like a remote drop.

`file://` without a path (or the source's own inbox folder) is the local inbox itself: nothing to pull.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

from trivsel.remote.base import Location, RemoteFile, period_of

CHUNK = 1024 * 1024


def folder_of(location: str) -> Path | None:
    path = unquote(urlsplit(location).path)
    return Path(path) if path not in ("", "/") else None


class FileLocation(Location):
    scheme = "file"

    def __init__(self, location: str, conn_id: str | None, *, who: str, timeout: float = 30.0):
        super().__init__(location, conn_id, who=who, timeout=timeout)
        self.root = folder_of(location)

    def list_period(self, period: str) -> list[RemoteFile]:
        if self.root is None or not self.root.is_dir():
            raise self.error("the folder does not exist")
        candidates = [p for p in self.root.iterdir() if p.is_file()]
        if (self.root / period).is_dir():
            candidates += [p for p in (self.root / period).iterdir() if p.is_file()]
        files = []
        for p in sorted(candidates):
            if p.name.startswith("."):
                continue
            rel = p.relative_to(self.root).as_posix()
            st = p.stat()
            files.append(RemoteFile(rel, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC), period_of(rel)))
        return [f for f in files if f.period == period]

    def read(self, f: RemoteFile, offset: int) -> Iterator[bytes]:
        with (self.root / f.path).open("rb") as fh:
            fh.seek(offset)
            while chunk := fh.read(CHUNK):
                yield chunk

    def delete(self, f: RemoteFile) -> None:
        (self.root / f.path).unlink()
