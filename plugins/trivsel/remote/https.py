"""`https://...`: a listing endpoint that returns the available files as JSON, and the files themselves.

The listing (GET on the location) is either a JSON list or an object with a `files` list; each entry:

    {"name": "2012-05/fravaer_2012-05.csv",    # path; its period folder or name gives the period
     "size": 48213,                              # bytes
     "modified": "2012-06-03T08:14:00Z",         # ISO 8601
     "url": "files/2012-05/fravaer_2012-05.csv", # absolute, or relative to the listing
     "period": "2012-05"}                        # optional: overrides folder/name

Credentials and TLS come from the Airflow connection named by `conn_id` (conn_type `http`), through the
HTTP provider's HttpHook: login/password (basic auth), extra `verify` (a CA file for a private CA, or
true), and any other extra key as a request header (e.g. `Authorization`). Files are downloaded from the
listing's host only, so the connection's credentials never go elsewhere.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

from trivsel.remote.base import Location, RemoteError, RemoteFile, Transient, display_location, period_of

CHUNK = 256 * 1024
log = logging.getLogger(__name__)


class HttpsLocation(Location):
    scheme = "https"

    def __init__(self, location: str, conn_id: str | None, *, who: str, timeout: float = 30.0):
        super().__init__(location, conn_id, who=who, timeout=timeout)
        self._session = None

    def _client(self):
        if self._session is not None:
            return self._session
        import requests

        if self.conn_id:
            from airflow.providers.http.hooks.http import HttpHook

            try:
                session = HttpHook(method="GET", http_conn_id=self.conn_id).get_conn()
            except Exception as exc:  # noqa: BLE001 - an undefined or malformed connection
                raise self.error(f"Airflow connection {self.conn_id!r}: {type(exc).__name__}: "
                                 f"{str(exc).splitlines()[0][:200]}") from None
        else:
            session = requests.Session()
        session.headers["Accept-Encoding"] = "identity"  # sizes and byte ranges as listed
        self._session = session
        return session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
        self._session = None

    def _get(self, url: str, headers: dict | None = None, stream: bool = False):
        import requests

        what = display_location(url)
        try:
            session = self._client()
            # verify explicitly: requests lets REQUESTS_CA_BUNDLE override a session's own CA file
            resp = session.get(url, headers=headers or {}, stream=stream, timeout=self.timeout,
                               allow_redirects=False, verify=session.verify)
        except requests.exceptions.SSLError as exc:
            log.debug("TLS error: %s", exc)
            raise self.error("TLS verification failed: the server's certificate is not trusted (set extra "
                             f"verify to the CA file in Airflow connection {self.conn_id!r})") from None
        except requests.exceptions.ConnectTimeout:
            raise Transient(f"no connection within {self.timeout:.0f}s") from None
        except requests.exceptions.ReadTimeout:
            raise Transient(f"no answer within {self.timeout:.0f}s") from None
        except requests.exceptions.ConnectionError as exc:
            if "refused" in str(exc).lower():
                raise self.error("connection refused (is the server running and the port right?)") from None
            raise Transient(f"connection failed ({type(exc).__name__})") from None
        if resp.status_code in (401, 403):
            resp.close()
            raise self.error(f"the server refused the credentials of Airflow connection {self.conn_id!r} "
                             f"(HTTP {resp.status_code})")
        if resp.status_code == 404:
            resp.close()
            raise self.error(f"{what} does not exist on the server (HTTP 404)")
        if resp.status_code in (408, 429) or resp.status_code >= 500:
            resp.close()
            raise Transient(f"HTTP {resp.status_code}")
        if resp.status_code >= 300 and resp.status_code not in (200, 206):
            resp.close()
            raise self.error(f"{what}: unexpected HTTP {resp.status_code}")
        return resp

    def list_period(self, period: str) -> list[RemoteFile]:
        import requests

        resp = self._get(self.location)
        try:
            data = resp.json()
        except (ValueError, requests.exceptions.RequestException):
            raise Transient("the listing is not complete JSON") from None
        entries = data.get("files") if isinstance(data, dict) else data
        if not isinstance(entries, list):
            raise self.error("the listing is neither a JSON list nor an object with a 'files' list")
        base = urlsplit(self.location)
        files = []
        for i, e in enumerate(entries):
            try:
                name = str(e["name"]).lstrip("/")
                size = int(e["size"])
                modified = _parse_time(e.get("modified"))
                url = urljoin(self.location, str(e.get("url") or name))
            except (KeyError, TypeError, ValueError) as exc:
                raise self.error(f"listing entry {i} is malformed ({type(exc).__name__}: {exc}); each needs "
                                 "name, size and modified") from None
            target = urlsplit(url)
            if (target.scheme, target.hostname, target.port) != (base.scheme, base.hostname, base.port):
                raise self.error(f"listing entry {name} points to another server ({display_location(url)}); "
                                 "files are only downloaded from the listing's own server")
            if size < 0 or ".." in name.split("/"):
                raise self.error(f"listing entry {i} has a negative size or a '..' in its name")
            files.append(RemoteFile(name, size, modified, str(e.get("period") or period_of(name) or "") or None,
                                    url))
        return [f for f in files if f.period == period]

    def read(self, f: RemoteFile, offset: int) -> Iterator[bytes]:
        import requests

        headers = {"Range": f"bytes={offset}-"} if offset else {}
        resp = self._get(f.url, headers=headers, stream=True)
        with resp:
            skip = offset if offset and resp.status_code != 206 else 0  # the server ignored the range
            total = _announced_size(resp, offset)
            if total is not None and total != f.size:
                raise RemoteError(f"{self.who}: {self.shown}: the listing says {f.path} has {f.size} bytes, "
                                  f"the server sends {total}: the listing lies about its size")
            try:
                for chunk in resp.iter_content(CHUNK):
                    if skip:
                        dropped = min(skip, len(chunk))
                        chunk, skip = chunk[dropped:], skip - dropped
                    if chunk:
                        yield chunk
            except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError,
                    requests.exceptions.Timeout) as exc:
                raise Transient(f"transfer broke off "
                                f"({type(exc).__name__})") from None


def _announced_size(resp, offset: int) -> int | None:
    """The whole file's size as the server announces it (Content-Range total, or Content-Length)."""
    cr = resp.headers.get("Content-Range", "")
    if resp.status_code == 206 and "/" in cr and not cr.endswith("/*"):
        return int(cr.rsplit("/", 1)[1])
    cl = resp.headers.get("Content-Length")
    if cl is not None and resp.status_code == 200:
        return int(cl)
    return None


def _parse_time(value) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, UTC)
    d = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return d if d.tzinfo else d.replace(tzinfo=UTC)
