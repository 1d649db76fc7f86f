"""The loader against a real PostgreSQL: archive, audit, COPY, quarantine, supersede.

Uses a tiny scheme registered only for these tests, so the rails are tested apart from any source.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from trivsel import loading, schema
from trivsel.config import parse_config
from trivsel.sources import base

PERIOD = "2099-01"

SCHEME = base.Scheme(
    name="rails_test_csv",
    source="incidents",
    tables=(base.RawTable("rails_test_row", (base.Column("source_row", "integer"),
                                             base.Column("unit", "text"),
                                             base.Column("n", "integer"))),),
)


def parse(path: Path, ctx: base.DeliveryContext):
    text = path.read_bytes().decode("utf-8")
    lines = text.splitlines()
    if not lines or lines[0] != "unit;n":
        raise base.FileRejected("header must be 'unit;n'", row=1)
    for i, line in enumerate(lines[1:], start=2):
        unit, n = line.split(";")
        if unit not in ctx.unit_names:
            ctx.reject(row=i, column="unit", reason=f"unknown unit {unit!r}", value=unit)
            continue
        yield "rails_test_row", (i, unit, int(n))


@pytest.fixture(scope="module")
def rails(warehouse_url, tmp_path_factory, monkeypatch_module):
    module = types.ModuleType("trivsel.sources.rails_test_csv")
    module.SCHEME, module.parse = SCHEME, parse
    sys.modules["trivsel.sources.rails_test_csv"] = module
    import trivsel.sources as sources

    monkeypatch_module.setattr(sources, "_MODULES", (*sources._MODULES, "rails_test_csv"))
    config = parse_config({"municipalities": [{
        "code": "999", "name": "Testkommune", "units": [{"name": "Enhed A"}, {"name": "Enhed B"}],
        "sources": {"incidents": {"cadence": "yearly", "schemes": [{"scheme": "rails_test_csv", "files": "*.csv"}]}},
    }]})
    inbox = tmp_path_factory.mktemp("inbox")
    archive = tmp_path_factory.mktemp("archive")
    # A database of its own in the session's server: these test deliveries never reach the shared
    # demo warehouse that the e2e tests read.
    admin = urlsplit(warehouse_url)._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute('drop database if exists "rails_loader" with (force)')
        conn.execute('create database "rails_loader"')
    url = urlsplit(warehouse_url)._replace(path="/rails_loader").geturl()
    monkeypatch_module.setenv("WAREHOUSE_URL", url)
    monkeypatch_module.setenv("TRIVSEL_INBOX", str(inbox))
    monkeypatch_module.setenv("TRIVSEL_ARCHIVE", str(archive))
    with psycopg.connect(url, autocommit=True) as conn:
        schema.ensure(conn)
    yield types.SimpleNamespace(config=config, inbox=inbox / "999" / "incidents", archive=archive, url=url)
    sys.modules.pop("trivsel.sources.rails_test_csv", None)
    monkeypatch_module.undo()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute('drop database if exists "rails_loader" with (force)')


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def deliver(rails, name: str, content: str, period: str | None = PERIOD) -> Path:
    folder = rails.inbox / period if period else rails.inbox
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(content, encoding="utf-8")
    return path


def ingest(rails, period=PERIOD):
    return {o.file_name: o for o in loading.ingest_municipality("999", period, "test", rails.config)}


def rows(url, delivery_id):
    with psycopg.connect(url) as conn:
        return conn.execute("select unit, n from raw.rails_test_row where delivery_id = %s order by source_row",
                            (delivery_id,)).fetchall()


def delivery(url, delivery_id):
    with psycopg.connect(url) as conn:
        return conn.execute("select status, reason, checksum_sha256, archive_path, size_bytes from audit.delivery"
                            " where delivery_id = %s", (delivery_id,)).fetchone()


def test_load_archive_and_audit(rails, warehouse_url):
    path = deliver(rails, "a.csv", "unit;n\nEnhed A;3\nEnhed B;4\n")
    out = ingest(rails)["a.csv"]
    assert out.status == "loaded", out.reason
    assert rows(rails.url, out.delivery_id) == [("Enhed A", 3), ("Enhed B", 4)]
    status, _reason, digest, archive_path, size = delivery(rails.url, out.delivery_id)
    assert status == "loaded"
    assert Path(archive_path).read_bytes() == path.read_bytes()
    assert size == path.stat().st_size
    assert loading.checksum(Path(archive_path))[0] == digest


def test_rerun_changes_nothing(rails, warehouse_url):
    again = ingest(rails)["a.csv"]
    assert again.status == "unchanged"


def test_byte_identical_copy_is_a_duplicate(rails, warehouse_url):
    deliver(rails, "a-copy.csv", "unit;n\nEnhed A;3\nEnhed B;4\n")
    out = ingest(rails)["a-copy.csv"]
    assert out.status == "duplicate"
    assert rows(rails.url, out.delivery_id) == []


def test_correction_supersedes_in_place(rails, warehouse_url):
    first = ingest(rails)["a.csv"].delivery_id
    for p in rails.inbox.joinpath(PERIOD).iterdir():
        p.unlink()
    deliver(rails, "a.csv", "unit;n\nEnhed A;5\nEnhed B;4\n")
    out = ingest(rails)["a.csv"]
    assert out.status == "loaded"
    assert delivery(rails.url, first)[0] == "superseded"
    assert rows(rails.url, first) == [("Enhed A", 3), ("Enhed B", 4)], "history stays queryable"
    assert rows(rails.url, out.delivery_id) == [("Enhed A", 5), ("Enhed B", 4)]


def test_row_problem_quarantines_whole_file_with_row_and_column(rails, warehouse_url):
    deliver(rails, "bad.csv", "unit;n\nEnhed A;1\nEnhed Z;2\n", period="2099-02")
    out = ingest(rails, "2099-02")["bad.csv"]
    assert out.status == "quarantined"
    assert "bad.csv row 3 column unit" in out.reason and "Enhed Z" in out.reason
    assert rows(rails.url, out.delivery_id) == [], "never half loaded"
    with psycopg.connect(rails.url) as conn:
        issue = conn.execute("select row_number, column_name, reason from quarantine.delivery_issue"
                             " where delivery_id = %s", (out.delivery_id,)).fetchone()
    assert issue[:2] == (3, "unit")


@pytest.mark.parametrize("name, content, reason", [
    ("empty.csv", "", "empty"),
    ("noise.csv", "\x00\x01garbage", "header"),
    ("notes.txt", "unit;n\n", "matches none"),
])
def test_file_problems_are_quarantined(rails, name, content, reason):
    deliver(rails, name, content, period="2099-03")
    out = ingest(rails, "2099-03")[name]
    assert out.status == "quarantined"
    assert reason in out.reason


def test_undated_file_is_taken_into_the_run_period(rails):
    deliver(rails, "late.csv", "unit;n\nEnhed B;9\n", period=None)
    out = ingest(rails, "2099-04")["late.csv"]
    assert out.status == "loaded"
    assert (rails.inbox / "2099-04" / "late.csv").exists()
    assert not (rails.inbox / "late.csv").exists()
    assert "late.csv" not in ingest(rails, "2099-05")
