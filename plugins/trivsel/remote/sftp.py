"""`sftp://host[:port]/path`: an SFTP drop, through the Airflow SFTP provider's SFTPHook.

The Airflow connection named by `conn_id` (conn_type `sftp`) gives the user and either a private key
(extra `private_key` or `key_file`) or a password, and the server's host key (extra `host_key`); host and
port come from the location. The folder at `path` holds period folders (`2012-05/<file>`) or files with
the period in their name (`fravaer_2012-05.csv`).
"""

from __future__ import annotations

import errno
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import unquote, urlsplit

from trivsel.remote.base import Location, RemoteFile, Transient, period_of

CHUNK = 256 * 1024


class SftpLocation(Location):
    scheme = "sftp"

    def __init__(self, location: str, conn_id: str | None, *, who: str, timeout: float = 30.0):
        super().__init__(location, conn_id, who=who, timeout=timeout)
        parts = urlsplit(location)
        self.host = parts.hostname
        self.port = parts.port or 22
        self.root = unquote(parts.path).rstrip("/") or "/"
        self._hook = None
        self._sftp = None

    # -------------------------------------------------------------- connection

    def _client(self):
        if self._sftp is not None:
            return self._sftp
        import paramiko
        from airflow.providers.sftp.hooks.sftp import SFTPHook

        try:
            hook = SFTPHook(ssh_conn_id=self.conn_id, remote_host=self.host, port=self.port,
                            conn_timeout=int(self.timeout), conn_retry_attempts=1)
            hook.banner_timeout = self.timeout
            hook.auth_timeout = int(self.timeout)
            hook.keepalive_interval = 0
            hook.look_for_keys = False  # only what the connection says, never the worker's own keys
            sftp = hook.get_conn()
        except paramiko.AuthenticationException:
            raise self.error(f"authentication failed: the server refused the credentials of Airflow "
                             f"connection {self.conn_id!r}") from None
        except paramiko.BadHostKeyException:
            raise self.error(f"the server's host key does not match the host_key of Airflow connection "
                             f"{self.conn_id!r}") from None
        except paramiko.ssh_exception.NoValidConnectionsError:
            raise self.error("connection refused (is the SFTP server running and the port right?)") from None
        except ConnectionRefusedError:
            raise self.error("connection refused (is the SFTP server running and the port right?)") from None
        except TimeoutError:
            raise Transient(f"no answer within {self.timeout:.0f}s") from None
        except paramiko.SSHException as exc:
            text = str(exc)
            if "known_hosts" in text or "host key" in text.lower():
                raise self.error("the server's host key is not known: set extra host_key in Airflow "
                                 f"connection {self.conn_id!r}") from None
            raise Transient(f"SSH error: {type(exc).__name__}") from None
        except OSError as exc:
            raise Transient(f"{exc.strerror or type(exc).__name__}") from None
        except Exception as exc:  # noqa: BLE001 - e.g. the connection id is not defined
            if type(exc).__name__ in ("AirflowNotFoundException", "AirflowException", "ValueError"):
                raise self.error(f"Airflow connection {self.conn_id!r}: {type(exc).__name__}: "
                                 f"{str(exc).splitlines()[0][:200]}") from None
            raise
        sftp.get_channel().settimeout(self.timeout)
        self._hook, self._sftp = hook, sftp
        return sftp

    def close(self) -> None:
        if self._hook is not None:
            try:
                self._hook.close_conn()
                if self._hook.client is not None:
                    self._hook.client.close()
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass
        self._hook = self._sftp = None

    def _drop(self) -> None:
        """Forget a connection that failed mid-transfer, so the next attempt connects anew."""
        self.close()

    # -------------------------------------------------------------- listing

    def _listdir(self, path: str, must_exist: bool):
        sftp = self._client()
        try:
            return sftp.listdir_attr(path)
        except FileNotFoundError:
            if must_exist:
                raise self.error(f"the folder {path} does not exist on the server") from None
            return []
        except PermissionError:
            raise self.error(f"permission denied on the folder {path}") from None
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                if must_exist:
                    raise self.error(f"the folder {path} does not exist on the server") from None
                return []
            self._drop()
            raise Transient(f"listing {path}: {exc}") from None
        except (EOFError, TimeoutError) as exc:
            self._drop()
            raise Transient(f"listing {path}: {type(exc).__name__}") from None

    def list_period(self, period: str) -> list[RemoteFile]:
        files = []
        for attr in self._listdir(self.root, must_exist=True):
            if stat.S_ISREG(attr.st_mode or 0) and not attr.filename.startswith("."):
                files.append(self._file(attr.filename, attr))
            elif stat.S_ISDIR(attr.st_mode or 0) and attr.filename == period:
                for sub in self._listdir(f"{self.root}/{period}", must_exist=False):
                    if stat.S_ISREG(sub.st_mode or 0) and not sub.filename.startswith("."):
                        files.append(self._file(f"{period}/{sub.filename}", sub))
        return [f for f in files if f.period == period]

    @staticmethod
    def _file(rel: str, attr) -> RemoteFile:
        modified = datetime.fromtimestamp(attr.st_mtime, UTC) if attr.st_mtime is not None else None
        return RemoteFile(rel, int(attr.st_size or 0), modified, period_of(rel))

    # -------------------------------------------------------------- transfer

    def read(self, f: RemoteFile, offset: int) -> Iterator[bytes]:
        sftp = self._client()
        path = f"{self.root}/{f.path}"
        try:
            fh = sftp.open(path, "rb")
        except FileNotFoundError:
            raise self.error(f"{f.path} was listed but is gone from the server") from None
        except (TimeoutError, OSError, EOFError) as exc:
            self._drop()
            raise Transient(f"opening {f.path}: {type(exc).__name__}") from None
        try:
            if offset:
                fh.seek(offset)
            while True:
                try:
                    chunk = fh.read(CHUNK)
                except (TimeoutError, OSError, EOFError) as exc:
                    self._drop()
                    raise Transient(f"reading {f.path}: {type(exc).__name__}") from None
                if not chunk:
                    return
                yield chunk
        finally:
            try:
                fh.close()
            except Exception:  # noqa: BLE001 - the connection may already be gone
                pass

    def delete(self, f: RemoteFile) -> None:
        try:
            self._client().remove(f"{self.root}/{f.path}")
        except OSError as exc:
            raise self.error(f"could not delete {f.path} after pulling it: {exc.strerror or exc}") from None
