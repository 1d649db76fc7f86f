"""Databases of their own in the session's test server, for tests that load or rebuild: they never touch
the shared demo warehouse the e2e tests read."""

from __future__ import annotations

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
