"""Databases of their own in the session's test server, for tests that load or rebuild: they never touch
the shared demo warehouse the e2e tests read."""

from __future__ import annotations

from urllib.parse import urlsplit

import psycopg

from trivsel import schema


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
