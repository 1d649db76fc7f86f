"""No clear employee number in the server log or in a reason a reader can see (issue 13).

Payroll files are loaded through trivsel.loading.ingest_file into a throwaway database of the session's
server. The server's log file (under the test home) and the reasons stored or logged are scanned for the
employee numbers the files contained."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
import throwaway_db
import yaml
from absence_helpers import KEY

from trivsel import loading, warehouse
from trivsel.config import parse_config
from trivsel.sources import bulk

ROOT = Path(__file__).resolve().parents[2]
PERIOD = "2014-01"
HEADER = "Medarbejdernr;Enhed;Måned;Fraværskode;Fraværstekst;Fraværstimer;Normtimer;Årsværk"
DB = "identifier_privacy"


@pytest.fixture(scope="module")
def env(warehouse_url, tmp_path_factory, monkeypatch_module):
    url = throwaway_db.create(warehouse_url, DB)
    inbox = tmp_path_factory.mktemp("inbox")
    monkeypatch_module.setenv("TRIVSEL_INBOX", str(inbox))
    monkeypatch_module.setenv("TRIVSEL_ARCHIVE", str(tmp_path_factory.mktemp("archive")))
    monkeypatch_module.setenv("WAREHOUSE_URL", url)
    with (ROOT / "config" / "municipalities.yml").open(encoding="utf-8") as fh:
        config = parse_config(yaml.safe_load(fh))
    muni = next(m for m in config.municipalities if m.code == "169")
    yield {"url": url, "muni": muni, "inbox": inbox}
    monkeypatch_module.undo()
    throwaway_db.drop(warehouse_url, DB)


def deliver(env, name: str, lines: list[str]) -> Path:
    folder = env["inbox"] / "169" / "hr_absence" / PERIOD
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("cp1252"))
    return path


def server_log() -> str:
    return warehouse.embedded().log_file.read_text(errors="replace")


def test_a_ragged_line_on_the_set_based_path_leaves_no_employee_number_in_the_server_log(env, monkeypatch):
    """COPY rejects the ragged line; the server logs the error, but neither the line (CONTEXT) nor the
    statement."""
    number = "918273"
    lines = [HEADER] + [f"{700100 + i:06d};VV fløj A;2014-01;;;0,00;160,33;1,00" for i in range(20)]
    lines.insert(5, f"{number};VV fløj A;2014-01;SYG;Egen sygdom;7,40;160,33;1,00;ekstra;felter")
    path = deliver(env, "fravaer_2014-01_ragged.csv", lines)
    monkeypatch.setenv("TRIVSEL_BULK_FROM_BYTES", "0")
    declined: list[str] = []
    run = bulk.run

    def traced(*args, **kwargs):
        try:
            return run(*args, **kwargs)
        except bulk.BulkFallback as exc:
            declined.append(str(exc))
            raise

    monkeypatch.setattr(bulk, "run", traced)
    before = len(server_log())
    with psycopg.connect(env["url"], autocommit=True) as conn:
        out = loading.ingest_file(conn, path, env["muni"], "hr_absence", PERIOD, run_id="test", key=KEY)
    assert declined and "extra data" in declined[0], "the set-based path met the ragged line in COPY"
    assert out.delivery_id is not None, out.line()  # loaded or quarantined by the parser: issue 12 decides
    log = server_log()[before:]
    assert "extra data after last expected column" in log, "the COPY error itself is logged"
    assert number not in log
    assert "CONTEXT:" not in log and "STATEMENT:" not in log and "DETAIL:" not in log
    for other in (f"{700100 + i:06d}" for i in range(20)):
        assert other not in log


def test_the_server_runs_with_terse_errors_and_no_error_statements(env):
    with psycopg.connect(env["url"]) as conn:
        assert conn.execute("show log_error_verbosity").fetchone()[0] == "terse"
        assert conn.execute("show log_min_error_statement").fetchone()[0] == "panic"
