"""Archive: every file as received, with its SHA-256, before anything else happens, and its row in
audit.delivery.

Its own module because it is the loader's one promise that holds whatever the file is (unroutable,
duplicate, unreadable, quarantined): the bytes are kept and registered. Nothing here parses.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from trivsel import settings
from trivsel.privacy import mask_identifiers

COPY_CHUNK = 1024 * 1024  # bytes per read of a delivered file (checksum) and per write into a COPY



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

