"""No clear employee number in the server log or in a reason a reader can see (issue 13).

Payroll files are loaded through trivsel.loading.ingest_file into a throwaway database of the session's
server. The server's log file (under the test home) and the reasons stored or logged are scanned for the
employee numbers the files contained."""

from __future__ import annotations

import logging
from pathlib import Path

import psycopg
import pytest
import throwaway_db
from absence_helpers import KEY

from trivsel import loading, warehouse
from trivsel.sources import bulk

PERIOD = "2014-01"
HEADER = "Medarbejdernr;Enhed;Måned;Fraværskode;Fraværstekst;Fraværstimer;Normtimer;Årsværk"
DB = "identifier_privacy"


@pytest.fixture(scope="module")
def env(warehouse_url, tmp_path_factory, monkeypatch_module):
    yield from throwaway_db.loader_env(warehouse_url, DB, tmp_path_factory, monkeypatch_module)


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


def swapped_numbers(first: int) -> list[str]:
    return [f"{first + 17 * i:06d}" for i in range(33)]


def swapped_lines(numbers: list[str]) -> list[str]:
    """A payroll month whose Medarbejdernr and Enhed columns were exported in each other's place."""
    return [HEADER] + [f"VV fløj {'AB'[i % 2]};{n};2014-01;;;0,00;160,33;1,00" for i, n in enumerate(numbers)]


@pytest.mark.parametrize("bulk_from", ["0", "off"], ids=["set-based", "parser"])
def test_swapped_columns_leave_no_employee_number_in_readable_reasons(env, monkeypatch, caplog, bulk_from):
    monkeypatch.setenv("TRIVSEL_BULK_FROM_BYTES", bulk_from)
    numbers = swapped_numbers(101000 if bulk_from == "0" else 4711)  # also with leading zeros: '004711'
    path = deliver(env, f"fravaer_2014-01_swapped_{'bulk' if bulk_from == '0' else 'parser'}.csv",
                   swapped_lines(numbers))
    before = len(server_log())
    with caplog.at_level(logging.INFO), psycopg.connect(env["url"], autocommit=True) as conn:
        out = loading.ingest_file(conn, path, env["muni"], "hr_absence", PERIOD, run_id="test", key=KEY)
        audit = conn.execute("select reason from audit.delivery where delivery_id = %s",
                             (out.delivery_id,)).fetchone()[0]
        issues = conn.execute("select row_number, column_name, reason, value from quarantine.delivery_issue"
                              " where delivery_id = %s order by row_number", (out.delivery_id,)).fetchall()
    assert out.status == "quarantined", out.line()
    units = [i for i in issues if i[1] == "Enhed"]  # the unit names in Medarbejdernr also make duplicates
    assert [r for r, _, _, _ in units] == [k + 2 for k in range(len(numbers))], "each row and column"
    assert all("unknown unit" in reason and "6 digits masked" in reason for _, _, reason, _ in units)
    assert f"{path.name} row 2 column Enhed: unknown unit" in audit, "the reason still names file, row, column"
    readable = "\n".join([audit, out.line(), *(o.reason or "" for o in [out]), caplog.text, server_log()[before:],
                          *(f"{r} {c} {m} {v}" for r, c, m, v in issues),
                          *(f"{i.reason} {i.value}" for i in out.issues)])
    for number in numbers:
        assert number not in readable, number
        if len(number.lstrip("0")) >= 5:  # shorter digit runs occur by chance (a checksum, a time)
            assert number.lstrip("0") not in readable, number


def test_masking_keeps_what_a_reason_needs():
    from trivsel.privacy import looks_like_identifier, mask_identifiers

    reason = "fravaer_20140101.csv row 7 column Enhed: unknown unit '101000' for municipality 169; month 2014-01"
    masked = mask_identifiers(reason, keep=("fravaer_20140101.csv",))
    assert masked == ("fravaer_20140101.csv row 7 column Enhed: unknown unit '<6 digits masked>' for "
                      "municipality 169; month 2014-01")
    assert mask_identifiers("CPR 010190-1234 in Fraværstekst") == "CPR <10 digits masked> in Fraværstekst"
    assert mask_identifiers("not a number (decimal comma expected): '14,80' or 0.740 or 1234") == \
        "not a number (decimal comma expected): '14,80' or 0.740 or 1234"
    assert mask_identifiers("sha256 9f86d081884c") == "sha256 9f86d081884c", "a checksum is not an identifier"
    assert looks_like_identifier("004711") and not looks_like_identifier("VV fløj A")


def test_every_reason_registered_in_audit_is_masked(env, tmp_path):
    """Statuses decided before parsing (duplicate, waiting, unroutable, …) go through loading._register: a
    value in their reason is masked there too, the file name kept."""
    path = tmp_path / "fravaer_20140101_x.csv"
    with psycopg.connect(env["url"], autocommit=True) as conn:
        did = loading._register(conn, code="169", source="hr_absence", period=PERIOD, scheme="hr_payroll_csv",
                                path=path, digest="0" * 64, size=0, archived=path, run_id="test",
                                status="quarantined", reason=f"{path.name}: cannot be matched with '123456'")
        reason = conn.execute("select reason from audit.delivery where delivery_id = %s", (did,)).fetchone()[0]
    assert reason == f"{path.name}: cannot be matched with '<6 digits masked>'"
