"""Deliveries against a real PostgreSQL: archive as received, duplicates, corrections, history, re-runs."""

from __future__ import annotations

import pytest

from trivsel import loading
from trivsel.integrity import differences, table_fingerprints
from trivsel.sources import all_schemes

PAYROLL = "169/hr_absence/2014-01/fravaer_2014-01.csv"
PERIOD = "2014-01"


@pytest.fixture(autouse=True)
def _need_payroll():
    if "hr_payroll_csv" not in all_schemes():
        pytest.fail("scheme module hr_payroll_csv is not registered (trivsel.sources.SCHEMES)")


def delivery(conn, did):
    return conn.execute("select file_name, checksum_sha256, size_bytes, municipality_code, source, scheme,"
                        " period, received_at, status, reason, archive_path, rows_loaded"
                        " from audit.delivery where delivery_id = %s", (did,)).fetchone()


def raw_count(conn, did):
    return conn.execute("select count(*) from raw.hr_payroll_absence where delivery_id = %s", (did,)).fetchone()[0]


def test_archived_as_received_with_checksum(wh, sample_root):
    path = wh.copy_sample(sample_root, PAYROLL)
    data = path.read_bytes()
    out = loading.ingest_municipality("169", PERIOD, "test")[0]
    assert out.status == "loaded", out.line()
    (name, digest, size, code, source, scheme, period, received_at, status, reason, archive_path,
     rows_loaded) = delivery(wh.conn, out.delivery_id)
    import hashlib
    from pathlib import Path

    assert (name, code, source, scheme, period, status) == (path.name, "169", "hr_absence", "hr_payroll_csv",
                                                            PERIOD, "loaded")
    assert digest == hashlib.sha256(data).hexdigest() and size == len(data) and received_at is not None
    assert Path(archive_path).read_bytes() == data, "the archive holds the bytes as received"
    assert rows_loaded == raw_count(wh.conn, out.delivery_id) > 0


def test_byte_identical_file_twice_is_a_duplicate_and_changes_nothing(wh, sample_root):
    path = wh.copy_sample(sample_root, PAYROLL)
    first = loading.ingest_municipality("169", PERIOD, "test")[0]
    before = table_fingerprints(wh.conn, ("raw",))
    # the same bytes again under another name (the municipality sent it twice)
    wh.put(f"169/hr_absence/{PERIOD}/fravaer_2014-01 (1).csv", path.read_bytes())
    out = {o.file_name: o for o in loading.ingest_municipality("169", PERIOD, "test")}
    assert out[path.name].status == "unchanged"
    dup = out["fravaer_2014-01 (1).csv"]
    assert dup.status == "duplicate" and f"delivery {first.delivery_id}" in dup.reason
    assert delivery(wh.conn, dup.delivery_id)[8] == "duplicate"
    assert delivery(wh.conn, first.delivery_id)[8] == "loaded"
    assert differences(before, table_fingerprints(wh.conn, ("raw",))) == []


def test_correction_replaces_the_period_and_keeps_history(wh, sample_root):
    path = wh.copy_sample(sample_root, PAYROLL)
    first = loading.ingest_municipality("169", PERIOD, "test")[0]
    old_rows = raw_count(wh.conn, first.delivery_id)
    # a corrected file for the same past period: one row dropped (hours corrected away)
    text = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(text[:-1]))
    second = loading.ingest_municipality("169", PERIOD, "test")[0]
    assert second.status == "loaded", second.line()
    assert delivery(wh.conn, first.delivery_id)[8] == "superseded"
    # what staging sees (loaded deliveries only) is exactly the new version
    visible = wh.conn.execute(
        "select count(*), count(distinct r.delivery_id), min(r.delivery_id) from raw.hr_payroll_absence r"
        " join audit.delivery d using (delivery_id) where d.status = 'loaded' and d.period = %s", (PERIOD,)
    ).fetchone()
    assert visible == (old_rows - 1, 1, second.delivery_id)
    # history: both versions in audit.delivery_history, the old rows still in raw
    hist = wh.conn.execute("select delivery_id, status, version, superseded_by from audit.delivery_history"
                           " where period = %s order by delivery_id", (PERIOD,)).fetchall()
    assert hist == [(first.delivery_id, "superseded", 1, second.delivery_id),
                    (second.delivery_id, "loaded", 2, None)]
    assert raw_count(wh.conn, first.delivery_id) == old_rows


def test_supersede_is_one_transaction(wh, sample_root):
    """At no moment are two versions (or none) of the period loaded: both status changes commit together."""
    path = wh.copy_sample(sample_root, PAYROLL)
    loading.ingest_municipality("169", PERIOD, "test")
    text = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(text[:-1]))
    wh.conn.execute("create table public.loaded_seen (n int)")
    # A trigger records how many deliveries of the period are loaded after every status change statement;
    # the deferred constraint trigger runs at commit time, i.e. sees the state other sessions can see.
    wh.conn.execute("""
        create function public.check_loaded() returns trigger language plpgsql as $$
        begin insert into public.loaded_seen select count(*) from audit.delivery
              where period = '2014-01' and source = 'hr_absence' and status = 'loaded'; return null; end $$;
        create constraint trigger loaded_once after update on audit.delivery deferrable initially deferred
            for each row execute function public.check_loaded();""")
    loading.ingest_municipality("169", PERIOD, "test")
    seen = [r[0] for r in wh.conn.execute("select n from public.loaded_seen")]
    assert seen and set(seen) == {1}, seen


def test_rerunning_a_period_changes_nothing(wh, sample_root):
    wh.copy_sample(sample_root, PAYROLL)
    loading.ingest_municipality("169", PERIOD, "run-1")
    before = table_fingerprints(wh.conn, ("raw", "quarantine"))
    n_deliveries = wh.conn.execute("select count(*) from audit.delivery").fetchone()[0]
    again = loading.ingest_municipality("169", PERIOD, "run-2")
    assert [o.status for o in again] == ["unchanged"]
    assert differences(before, table_fingerprints(wh.conn, ("raw", "quarantine"))) == []
    assert wh.conn.execute("select count(*) from audit.delivery").fetchone()[0] == n_deliveries


def test_fingerprint_cli(wh, sample_root, capsys):
    from trivsel import cli

    wh.copy_sample(sample_root, PAYROLL)
    loading.ingest_municipality("169", PERIOD, "test")
    assert cli.main(["fingerprint", "raw"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("raw.hr_payroll_absence\t"))
    assert int(line.split("\t")[1]) > 0 and len(line.split("\t")[2]) == 32


def test_reprocess_marker_reloads_the_same_bytes_under_a_rotated_key(wh, sample_root, monkeypatch):
    """The key-rotation procedure of docs/operations-reliability.md: mark, re-run, the new version supersedes."""
    wh.copy_sample(sample_root, PAYROLL)
    first = loading.ingest_municipality("169", PERIOD, "old-key")[0]
    old = {r[0] for r in wh.conn.execute("select employee_pseudonym from raw.hr_payroll_absence where delivery_id = %s",
                                         (first.delivery_id,))}
    monkeypatch.setenv("TRIVSEL_PSEUDONYM_KEY", "a-rotated-key-for-this-test-only")
    assert loading.ingest_municipality("169", PERIOD, "no-mark")[0].status == "unchanged"
    wh.conn.execute("insert into quarantine.delivery_issue (delivery_id, file_name, check_name, reason)"
                    " select delivery_id, file_name, 'reprocess', 'key rotation' from audit.delivery"
                    " where scheme = 'hr_payroll_csv' and status = 'loaded'")
    again = loading.ingest_municipality("169", PERIOD, "new-key")[0]
    assert again.status == "loaded" and again.rows == first.rows, again.line()
    assert delivery(wh.conn, first.delivery_id)[8] == "superseded"
    new = {r[0] for r in wh.conn.execute("select employee_pseudonym from raw.hr_payroll_absence where delivery_id = %s",
                                         (again.delivery_id,))}
    assert len(new) == len(old) and not (new & old), "every pseudonym changes with the key"
    assert loading.ingest_municipality("169", PERIOD, "after")[0].status == "unchanged"
