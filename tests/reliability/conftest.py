"""Fixtures for the reliability tests.

Every database test gets a database of its own (`wh`), created in the session's test warehouse server and
dropped afterwards, plus its own inbox and archive: bad deliveries, killed loads and hostile names never
reach the shared demo warehouse that other tests read.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

import psycopg
import pytest
from rel_helpers import sample_file

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def sample_root(tmp_path_factory) -> Path:
    """Every domain's sample deliveries, generated once, in the inbox layout (<code>/<source>/<period>/<file>)."""
    import importlib

    root = tmp_path_factory.mktemp("samples")
    for domain in ("survey", "absence", "incidents"):
        try:
            module = importlib.import_module(f"trivsel.samples.{domain}")
        except ModuleNotFoundError:
            continue
        module.generate(root)
    return root


@pytest.fixture
def wh(warehouse_url, tmp_path, monkeypatch):
    """A fresh warehouse database of its own (same server), with its own inbox and archive."""
    from trivsel import schema

    name = f"rel_{uuid.uuid4().hex[:10]}"
    admin = urlsplit(warehouse_url)._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    url = urlsplit(warehouse_url)._replace(path=f"/{name}").geturl()
    inbox, archive = tmp_path / "inbox", tmp_path / "archive"
    inbox.mkdir()
    archive.mkdir()
    monkeypatch.setenv("WAREHOUSE_URL", url)
    monkeypatch.setenv("TRIVSEL_INBOX", str(inbox))
    monkeypatch.setenv("TRIVSEL_ARCHIVE", str(archive))
    conn = psycopg.connect(url, autocommit=True)
    schema.ensure(conn)

    def put(relative: str, data: bytes) -> Path:
        path = inbox / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    def copy_sample(sample_root: Path, relative: str, as_name: str | None = None) -> Path:
        src = sample_file(sample_root, relative)
        dest = inbox / relative if as_name is None else inbox / Path(relative).parent / as_name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        return dest

    yield SimpleNamespace(url=url, name=name, inbox=inbox, archive=archive, conn=conn, put=put,
                          copy_sample=copy_sample, tmp=tmp_path)
    conn.close()
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'drop database if exists "{name}" with (force)')
