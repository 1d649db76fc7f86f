"""Databases and installations of their own, for tests that load or rebuild: they never touch the shared demo
warehouse the e2e tests read.

- create/drop/loader_env: a database of its own in the session's test server;
- isolated_env/run_python/free_port: a subprocess with a home (and a server) of its own, which inherits
  nothing that points at the session's installation."""

from __future__ import annotations

import os
import subprocess
import sys
from urllib.parse import urlsplit

import psycopg

from trivsel import schema
from trivsel.ports import free_port  # noqa: F401 - the tests' one way to a port of their own


def _admin(warehouse_url: str) -> str:
    return urlsplit(warehouse_url)._replace(path="/postgres").geturl()


def create(warehouse_url: str, name: str, *, rails: bool = True) -> str:
    """A fresh database `name` (a leftover of an interrupted session is dropped first); with `rails`, the
    loader's schemas and tables (trivsel.schema.ensure). Returns its URL."""
    with psycopg.connect(_admin(warehouse_url), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')
        conn.execute(f'create database "{name}"')
    url = urlsplit(warehouse_url)._replace(path=f"/{name}").geturl()
    if rails:
        with psycopg.connect(url, autocommit=True) as conn:
            schema.ensure(conn)
    return url


def drop(warehouse_url: str, *names: str) -> None:
    with psycopg.connect(_admin(warehouse_url), autocommit=True) as conn:
        for name in names:
            conn.execute(f'drop database if exists "{name}" with (force)')


def loader_env(warehouse_url: str, name: str, tmp_path_factory, monkeypatch, code: str = "169"):
    """A throwaway database with its own inbox and archive for loader tests, and municipality `code` of the
    repository's config; a module fixture yields from it (`yield from throwaway_db.loader_env(...)`)."""
    from pathlib import Path

    import yaml

    from trivsel.config import parse_config

    url = create(warehouse_url, name)
    inbox = tmp_path_factory.mktemp("inbox")
    monkeypatch.setenv("TRIVSEL_INBOX", str(inbox))
    monkeypatch.setenv("TRIVSEL_ARCHIVE", str(tmp_path_factory.mktemp("archive")))
    monkeypatch.setenv("WAREHOUSE_URL", url)
    config_file = Path(__file__).resolve().parents[1] / "config" / "municipalities.yml"
    with config_file.open(encoding="utf-8") as fh:
        config = parse_config(yaml.safe_load(fh))
    muni = next(m for m in config.municipalities if m.code == code)
    yield {"url": url, "muni": muni, "inbox": inbox}
    monkeypatch.undo()
    drop(warehouse_url, name)


#: where the session's own installation is: a subprocess with a home of its own must not inherit them
SESSION_PLACES = ("WAREHOUSE_URL", "TRIVSEL_INBOX", "TRIVSEL_ARCHIVE", "AIRFLOW_HOME")


def isolated_env(*also: str, **settings: str) -> dict[str, str]:
    """os.environ without the session's places (SESSION_PLACES), Airflow's settings and connections
    (AIRFLOW__*, AIRFLOW_CONN_*), the stage roles' logins (TRIVSEL_*_URL, TRIVSEL_*_PASSWORD) and the names
    in `also`; then `settings` (TRIVSEL_HOME, TRIVSEL_PG_PORT=str(free_port()), ...). Without it a run in a
    home of its own would load into, or log in to, the session's warehouse."""
    env = {k: v for k, v in os.environ.items()
           if k not in SESSION_PLACES and k not in also
           and not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_"))
           and not (k.startswith("TRIVSEL_") and k.endswith(("_URL", "_PASSWORD")))}
    env.update(settings)
    return env


def run_python(code: str, env: dict[str, str], **kw) -> str:
    """`python -c code` in `env` (an isolated_env); its last line of output. Fails the test, with the end of
    its stderr, when it fails."""
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, **kw)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
