"""`s3://bucket/prefix`: any S3-compatible object store, through the Airflow Amazon provider's S3Hook.

The Airflow connection named by `conn_id` (conn_type `aws`) gives the access key (login) and secret
(password), and for a store other than AWS its `endpoint_url` (extra), `region_name` and `verify`.
Under the prefix: period "folders" (`prefix/2014-01/<file>`) or files with the period in their name.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import unquote, urlsplit

from trivsel.remote.base import Location, RemoteError, RemoteFile, Transient, period_of

CHUNK = 256 * 1024
_CREDENTIALS = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "ExpiredToken",
                "InvalidToken", "AuthorizationHeaderMalformed"}


class S3Location(Location):
    scheme = "s3"

    def __init__(self, location: str, conn_id: str | None, *, who: str, timeout: float = 30.0):
        super().__init__(location, conn_id, who=who, timeout=timeout)
        parts = urlsplit(location)
        self.bucket = parts.netloc
        self.prefix = unquote(parts.path).strip("/")
        self._s3 = None

    def _client(self):
        if self._s3 is None:
            from botocore.config import Config

            try:
                from airflow.providers.amazon.aws.hooks.s3 import S3Hook

                hook = S3Hook(aws_conn_id=self.conn_id,
                              config=Config(connect_timeout=self.timeout, read_timeout=self.timeout,
                                            retries={"max_attempts": 1}))
                self._s3 = hook.get_conn()
            except Exception as exc:  # noqa: BLE001 - an undefined or malformed connection
                raise self.error(f"Airflow connection {self.conn_id!r}: {type(exc).__name__}: "
                                 f"{str(exc).splitlines()[0][:200]}") from None
        return self._s3

    def _fail(self, exc: Exception, what: str) -> Exception:
        """Map a botocore error to RemoteError (will not mend) or Transient (retry)."""
        from botocore import exceptions as bx

        if isinstance(exc, bx.ClientError):
            code = exc.response.get("Error", {}).get("Code", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if code in _CREDENTIALS or status in (401, 403):
                return self.error(f"the store refused the credentials of Airflow connection {self.conn_id!r} "
                                  f"({code or status})")
            if code == "NoSuchBucket":
                return self.error(f"the bucket {self.bucket} does not exist")
            if code in ("NoSuchKey", "404"):
                return self.error(f"{what}: listed but gone from the store")
            if status >= 500 or code in ("SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable"):
                return Transient(f"{what}: {code or status}")
            return self.error(f"{what}: {code or status}")
        if isinstance(exc, bx.EndpointConnectionError):
            return self.error("connection refused (is the endpoint_url of the connection right?)")
        if isinstance(exc, bx.NoCredentialsError):
            return self.error(f"no credentials: set login/password of Airflow connection {self.conn_id!r}")
        if isinstance(exc, (bx.ConnectTimeoutError, bx.ReadTimeoutError)):
            return Transient(f"{what}: no answer within {self.timeout:.0f}s")
        return Transient(f"{what}: {type(exc).__name__}")

    def list_period(self, period: str) -> list[RemoteFile]:
        from botocore.exceptions import BotoCoreError, ClientError

        base = f"{self.prefix}/" if self.prefix else ""
        files = []
        try:
            for page in self._client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=base):
                for obj in page.get("Contents", []):
                    rel = obj["Key"][len(base):]
                    if not rel or rel.endswith("/") or rel.rsplit("/", 1)[-1].startswith("."):
                        continue
                    if rel.count("/") > 1:
                        continue
                    files.append(RemoteFile(rel, int(obj["Size"]), obj.get("LastModified"), period_of(rel)))
        except (ClientError, BotoCoreError) as exc:
            raise self._fail(exc, "listing") from None
        return [f for f in files if f.period == period]

    def read(self, f: RemoteFile, offset: int) -> Iterator[bytes]:
        from botocore.exceptions import BotoCoreError, ClientError

        key = f"{self.prefix}/{f.path}" if self.prefix else f.path
        kwargs = {"Range": f"bytes={offset}-"} if offset else {}
        try:
            obj = self._client().get_object(Bucket=self.bucket, Key=key, **kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise self._fail(exc, f.path) from None
        cr = obj.get("ContentRange") or ""
        total = int(cr.rsplit("/", 1)[1]) if "/" in cr and not cr.endswith("*") else offset + obj["ContentLength"]
        if total != f.size:
            obj["Body"].close()
            raise RemoteError(f"{self.who}: {self.shown}: the listing says {f.path} has {f.size} bytes, the store "
                              f"sends {total}: the listing lies about its size")
        try:
            yield from obj["Body"].iter_chunks(CHUNK)
        except (ClientError, BotoCoreError) as exc:
            raise self._fail(exc, f.path) from None
        finally:
            obj["Body"].close()

    def delete(self, f: RemoteFile) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        key = f"{self.prefix}/{f.path}" if self.prefix else f.path
        try:
            self._client().delete_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise self.error(f"could not delete {f.path} after pulling it: {type(exc).__name__}") from None
