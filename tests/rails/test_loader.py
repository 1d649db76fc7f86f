"""The loader against a real PostgreSQL: archive, audit, COPY, quarantine, supersede.

Uses a tiny scheme registered only for these tests, so the rails are tested apart from any source.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import psycopg
import pytest
import throwaway_db

from trivsel import loading
from trivsel.config import parse_config
from trivsel.sources import base, bulk

PERIOD = "2009-01"

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


def bulk_plan(path: Path, ctx: base.DeliveryContext) -> bulk.BulkPlan | None:
    """The same scheme, set-based: the header is checked here, the rows in SQL."""
    with path.open("rb") as fh:
        header = fh.readline().rstrip(b"\r\n")
    if header != b"unit;n":
        raise base.FileRejected("header must be 'unit;n'", row=1)
    return bulk.BulkPlan(
        landing_columns=("unit", "n"),
        copy_options="format csv, header true, delimiter ';', encoding 'UTF8'",
        checks=["select source_row, 'unit', 'unknown unit ' || quote_literal(unit), unit from bulk_landing "
                "where unit <> all(%(units)s)"],
        inserts={"rails_test_row": "select source_row, unit, n::integer from bulk_landing "
                                   "where unit = any(%(units)s)"},
        params={"units": ctx.unit_names},
    )


@pytest.fixture(scope="module")
def rails(warehouse_url, tmp_path_factory, monkeypatch_module):
    module = types.ModuleType("trivsel.sources.rails_test_csv")
    module.SCHEME, module.parse, module.bulk_plan = SCHEME, parse, bulk_plan
    sys.modules["trivsel.sources.rails_test_csv"] = module
    import trivsel.sources as sources

    monkeypatch_module.setattr(sources, "_MODULES", (*sources._MODULES, "rails_test_csv"))
    config = parse_config({"municipalities": [{
        "code": "999", "name": "Testkommune", "units": [{"name": "Enhed A"}, {"name": "Enhed B"}],
        "sources": {"incidents": {"cadence": "yearly", "schemes": [{"scheme": "rails_test_csv", "files": "*.csv"}]}},
    }]})
    inbox = tmp_path_factory.mktemp("inbox")
    archive = tmp_path_factory.mktemp("archive")
    url = throwaway_db.create(warehouse_url, "rails_loader")
    monkeypatch_module.setenv("WAREHOUSE_URL", url)
    monkeypatch_module.setenv("TRIVSEL_INBOX", str(inbox))
    monkeypatch_module.setenv("TRIVSEL_ARCHIVE", str(archive))
    yield types.SimpleNamespace(config=config, inbox=inbox / "999" / "incidents", archive=archive, url=url)
    sys.modules.pop("trivsel.sources.rails_test_csv", None)
    monkeypatch_module.undo()
    throwaway_db.drop(warehouse_url, "rails_loader")


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
    deliver(rails, "bad.csv", "unit;n\nEnhed A;1\nEnhed Z;2\n", period="2009-02")
    out = ingest(rails, "2009-02")["bad.csv"]
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
    deliver(rails, name, content, period="2009-03")
    out = ingest(rails, "2009-03")[name]
    assert out.status == "quarantined"
    assert reason in out.reason


def test_undated_file_is_taken_into_the_run_period(rails):
    deliver(rails, "late.csv", "unit;n\nEnhed B;9\n", period=None)
    out = ingest(rails, "2009-04")["late.csv"]
    assert out.status == "loaded"
    assert (rails.inbox / "2009-04" / "late.csv").exists()
    assert not (rails.inbox / "late.csv").exists()
    assert "late.csv" not in ingest(rails, "2009-05")


def analyze_count(url) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("select analyze_count from pg_stat_user_tables"
                            " where schemaname = 'raw' and relname = 'rails_test_row'").fetchone()[0]


@pytest.mark.parametrize("bulk_from", ["0", "off"], ids=["bulk path", "parser"])
def test_statistics_refreshed_once_per_batch_not_per_delivery(rails, monkeypatch, bulk_from):
    """Fresh planner statistics before GX, but one ANALYZE per raw table per batch: ANALYZE samples the
    whole table however small the delivery, so one per delivery cost more than the loads themselves."""
    monkeypatch.setenv("TRIVSEL_BULK_FROM_BYTES", bulk_from)
    period = "2009-10" if bulk_from == "0" else "2009-11"
    body = "".join(f"Enhed {'AB'[i % 2]};{i}\n" for i in range(loading.ANALYZE_FROM_ROWS))
    for k in range(3):  # each delivery alone is big enough to have had its own ANALYZE before
        deliver(rails, f"big-{k}.csv", "unit;n\n" + body + f"Enhed A;{k}\n", period=period)
    before = analyze_count(rails.url)
    out = ingest(rails, period)
    assert {o.status for o in out.values()} == {"loaded"}, [o.reason for o in out.values()]
    assert analyze_count(rails.url) - before == 1
    assert all(len(rows(rails.url, o.delivery_id)) == loading.ANALYZE_FROM_ROWS + 1 for o in out.values())


def test_small_batch_is_not_analysed(rails):
    before = analyze_count(rails.url)
    deliver(rails, "small.csv", "unit;n\nEnhed A;1\n", period="2009-12")
    assert ingest(rails, "2009-12")["small.csv"].status == "loaded"
    assert analyze_count(rails.url) == before


# ---------------------------------------------------------------- the set-based (bulk) path


def issues_of(url, delivery_id):
    with psycopg.connect(url) as conn:
        return conn.execute("select row_number, column_name, check_name, reason, value from quarantine.delivery_issue"
                            " where delivery_id = %s order by row_number, column_name", (delivery_id,)).fetchall()


@pytest.fixture
def bulk_always(monkeypatch):
    monkeypatch.setenv("TRIVSEL_BULK_FROM_BYTES", "0")


def test_bulk_path_loads_and_numbers_rows_by_line(rails, bulk_always, caplog):
    caplog.set_level("INFO", logger="trivsel")
    deliver(rails, "bulk.csv", "unit;n\nEnhed A;1\nEnhed B;2\n;\nEnhed A;3", period="2009-06")
    out = ingest(rails, "2009-06")["bulk.csv"]
    assert out.status == "loaded", out.reason
    assert "loaded set-based" in caplog.text
    with psycopg.connect(rails.url) as conn:
        got = conn.execute("select source_row, unit, n from raw.rails_test_row where delivery_id = %s "
                           "order by source_row", (out.delivery_id,)).fetchall()
    # line 4 holds only a separator: skipped, as the parsers skip it; the last line has no newline
    assert got == [(2, "Enhed A", 1), (3, "Enhed B", 2), (5, "Enhed A", 3)]
    assert out.rows == 3


def test_bulk_checks_quarantine_with_row_column_and_value(rails, bulk_always):
    deliver(rails, "bulk-bad.csv", "unit;n\nEnhed A;1\nEnhed Z;2\nEnhed Q;3\n", period="2009-07")
    out = ingest(rails, "2009-07")["bulk-bad.csv"]
    assert out.status == "quarantined"
    assert issues_of(rails.url, out.delivery_id) == [
        (3, "unit", "parse", "unknown unit 'Enhed Z'", "Enhed Z"),
        (4, "unit", "parse", "unknown unit 'Enhed Q'", "Enhed Q"),
    ]
    assert rows(rails.url, out.delivery_id) == []


@pytest.mark.parametrize("name, content", [
    ("blank-line.csv", "unit;n\nEnhed A;1\n\nEnhed Z;2\n"),       # COPY would misnumber the lines
    ("ragged.csv", "unit;n\nEnhed A;1;x\nEnhed Z;2\n"),            # COPY refuses the extra field
    ("quoted-break.csv", 'unit;n\n"Enhed\nA";1\nEnhed Z;2\n'),      # a record over two lines
])
def test_what_copy_cannot_read_exactly_goes_to_the_parser(rails, bulk_always, name, content, caplog):
    caplog.set_level("INFO", logger="trivsel")
    deliver(rails, name, content, period="2009-08")
    out = ingest(rails, "2009-08")[name]
    assert "the Python parser takes it" in caplog.text
    # the parser's own verdict: it does not know the bulk path was tried
    assert out.status == "quarantined"
    assert out.reason and "bulk" not in out.reason


def test_bulk_header_problem_is_the_parsers_rejection(rails, bulk_always):
    deliver(rails, "bulk-header.csv", "enhed;antal\nEnhed A;1\n", period="2009-09")
    out = ingest(rails, "2009-09")["bulk-header.csv"]
    assert out.status == "quarantined" and "header must be 'unit;n'" in out.reason


def test_bulk_threshold(monkeypatch):
    monkeypatch.setenv("TRIVSEL_BULK_FROM_BYTES", "off")
    assert bulk.threshold() is None
    monkeypatch.setenv("TRIVSEL_BULK_FROM_BYTES", "2048")
    assert bulk.threshold() == 2048
    monkeypatch.delenv("TRIVSEL_BULK_FROM_BYTES")
    assert bulk.threshold() == bulk.DEFAULT_FROM_BYTES


def test_count_data_lines(tmp_path):
    p = tmp_path / "f.csv"
    for content, expected in [(b"h\na\nb\n", (2, False)), (b"h\na\nb", (2, False)), (b"h\r\na\r\n\r\nb\r\n", (3, True)),
                              (b"h\n", (0, False)), (b"h\n\n", (1, True))]:
        p.write_bytes(content)
        assert bulk.count_data_lines(p) == expected, content
