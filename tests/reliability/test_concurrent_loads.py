"""Loads of one municipality and period at the same moment, against a real PostgreSQL (issue 14,
"concurrency-safe by construction"): `trivsel load` and the DAG's ingest (loading.ingest_municipality), each
in its own thread with its own connection, on two corrected re-deliveries of one key. Whatever the order,
the result equals one of them, with exactly one `loaded` version per key and a complete audit history.
"""

from __future__ import annotations

import hashlib
import threading
import time

import psycopg
import pytest

from trivsel import cli, loading, schema
from trivsel.sources import all_schemes

PAYROLL = "169/hr_absence/2014-01/fravaer_2014-01.csv"
PERIOD = "2014-01"
KEY = ("169", "hr_absence", PERIOD, "hr_payroll_csv")


@pytest.fixture(autouse=True)
def _need_payroll():
    if "hr_payroll_csv" not in all_schemes():
        pytest.fail("scheme module hr_payroll_csv is not registered (trivsel.sources.SCHEMES)")


def _cli_load(path) -> int:
    return cli.main(["load", str(path), "--municipality", "169", "--source", "hr_absence", "--period", PERIOD])


def _run_together(*jobs):
    """Start every job at the same moment (a barrier), each in its own thread; return results or raise."""
    barrier = threading.Barrier(len(jobs))
    results: list = [None] * len(jobs)
    errors: list = []

    def run(i, job):
        barrier.wait()
        try:
            results[i] = job()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not any(t.is_alive() for t in threads), "a load never finished (deadlock?)"
    if errors:
        raise errors[0]
    return results


def _key_history(conn):
    return conn.execute(
        "select delivery_id, checksum_sha256, status, rows_loaded, reason, version, superseded_by"
        " from audit.delivery_history where municipality_code = %s and source = %s and period = %s"
        " and scheme = %s order by delivery_id", KEY).fetchall()


def _visible_rows(conn):
    """What staging reads: the raw rows of the key's loaded deliveries, as a multiset of row tuples."""
    rows = conn.execute(
        "select r.* from raw.hr_payroll_absence r join audit.delivery d using (delivery_id)"
        " where d.status = 'loaded' and d.municipality_code = '169' and d.period = %s", (PERIOD,)).fetchall()
    names = [c.name for c in conn.execute("select * from raw.hr_payroll_absence limit 0").description]
    drop = {names.index(n) for n in ("delivery_id",) if n in names}
    return sorted(tuple(v for i, v in enumerate(r) if i not in drop) for r in rows)


def test_two_corrections_at_once_leave_one_loaded_version(wh, sample_root, tmp_path):
    original = wh.copy_sample(sample_root, PAYROLL)
    first = loading.ingest_municipality("169", PERIOD, "run-1")[0]
    assert first.status == "loaded", first.line()
    lines = original.read_bytes().splitlines(keepends=True)
    correction_a = b"".join(lines[:-1])  # through the DAG's ingest, in the inbox
    correction_b = b"".join(lines[:-2])  # through `trivsel load`, from elsewhere
    original.write_bytes(correction_a)
    cli_dir = tmp_path / "cli"
    cli_dir.mkdir()
    cli_file = cli_dir / original.name
    cli_file.write_bytes(correction_b)

    ingest_out, cli_rc = _run_together(lambda: loading.ingest_municipality("169", PERIOD, "run-2"),
                                       lambda: _cli_load(cli_file))
    assert cli_rc == 0
    assert [o.status for o in ingest_out] == ["loaded"], [o.line() for o in ingest_out]

    history = _key_history(wh.conn)
    digests = {hashlib.sha256(d).hexdigest(): d for d in (correction_a, correction_b)}
    assert len(history) == 3, history  # the original and both corrections, every one recorded
    statuses = [h[2] for h in history]
    assert statuses.count("loaded") == 1 and statuses.count("superseded") == 2, history
    assert history[0][0] == first.delivery_id and history[0][2] == "superseded"
    assert {h[1] for h in history[1:]} == set(digests), "both corrections are in the history"
    assert all(h[4] is None or "interrupted" not in h[4] for h in history), history
    loaded = next(h for h in history if h[2] == "loaded")
    winner = digests[loaded[1]]
    # the loaded one is the later decided: the other correction is superseded by it
    assert [h[5] for h in history] == [1, 2, 3] and history[1][6] == history[2][0] == loaded[0]
    assert loaded[3] == len(winner.splitlines()) - 1  # its data rows (header excluded), all of them loaded

    # The result equals that correction loaded alone: the same visible rows as a fresh load of its bytes.
    visible = _visible_rows(wh.conn)
    assert len(visible) == loaded[3]
    other = [h for h in history[1:] if h[2] == "superseded"][0]
    assert wh.conn.execute("select count(*) from raw.hr_payroll_absence where delivery_id = %s",
                           (other[0],)).fetchone()[0] == len(digests[other[1]].splitlines()) - 1, \
        "the superseded correction's rows are kept for the history, not visible"
    assert wh.conn.execute("select count(*) from audit.delivery where status = 'validating'").fetchone()[0] == 0


def test_the_same_correction_twice_at_once_is_loaded_once(wh, sample_root, tmp_path):
    original = wh.copy_sample(sample_root, PAYROLL)
    first = loading.ingest_municipality("169", PERIOD, "run-1")[0]
    correction = b"".join(original.read_bytes().splitlines(keepends=True)[:-1])
    original.write_bytes(correction)
    cli_file = tmp_path / "fravaer_2014-01 (1).csv"
    cli_file.write_bytes(correction)

    ingest_out, cli_rc = _run_together(lambda: loading.ingest_municipality("169", PERIOD, "run-2"),
                                       lambda: _cli_load(cli_file))
    assert cli_rc == 0
    history = _key_history(wh.conn)
    assert [h[0] for h in history][0] == first.delivery_id
    statuses = sorted(h[2] for h in history)
    assert statuses == ["duplicate", "loaded", "superseded"], history
    loaded = next(h for h in history if h[2] == "loaded")
    dup = next(h for h in history if h[2] == "duplicate")
    assert loaded[1] == dup[1] == hashlib.sha256(correction).hexdigest()
    assert f"delivery {loaded[0]}" in dup[4]
    assert wh.conn.execute("select count(*) from raw.hr_payroll_absence where delivery_id = %s",
                           (dup[0],)).fetchone()[0] == 0, "a duplicate keeps no rows"
    assert len(_visible_rows(wh.conn)) == loaded[3] == len(correction.splitlines()) - 1
    assert ingest_out[0].status in ("loaded", "duplicate")


@pytest.mark.parametrize("path", ["ingest", "cli"])
def test_every_load_path_waits_for_the_period_lock(wh, sample_root, path):
    """Hold the lock from another connection: neither the DAG's ingest nor `trivsel load` registers anything
    until it is released (then it loads)."""
    original = wh.copy_sample(sample_root, PAYROLL)
    job = (lambda: loading.ingest_municipality("169", PERIOD, "run-1")) if path == "ingest" \
        else (lambda: _cli_load(original))
    with psycopg.connect(wh.url, autocommit=True) as holder:
        with loading.period_lock(holder, "169", PERIOD):
            assert loading.holds_period_lock(holder, "169", PERIOD)
            result: list = []
            t = threading.Thread(target=lambda: result.append(job()))
            t.start()
            time.sleep(3)
            assert t.is_alive(), "the load did not wait for the lock"
            assert wh.conn.execute("select count(*) from audit.delivery").fetchone()[0] == 0
        t.join(timeout=600)
        assert not loading.holds_period_lock(holder, "169", PERIOD)
    assert result and (result[0] == 0 if path == "cli" else result[0][0].status == "loaded"), result
    assert wh.conn.execute("select status from audit.delivery").fetchall() == [("loaded",)]


def test_undated_files_move_only_under_the_lock(wh, sample_root):
    """discover() refuses to run without the period lock; under it, an undated file is taken into the period."""
    src = wh.copy_sample(sample_root, PAYROLL)
    undated = src.parent.parent / src.name
    src.rename(undated)
    with psycopg.connect(wh.url, autocommit=True) as conn:
        with pytest.raises(RuntimeError, match="period_lock"):
            loading.discover(conn, "169", PERIOD)
        with pytest.raises(RuntimeError, match="period_lock"):
            loading.cleanup_interrupted(conn, "169", PERIOD)
        assert undated.exists(), "nothing moved without the lock"
        with loading.period_lock(conn, "169", PERIOD):
            found = loading.discover(conn, "169", PERIOD)
    assert found == [("hr_absence", src)] and src.exists() and not undated.exists()


def test_one_loaded_delivery_per_key_is_enforced(wh):
    def add(status: str, digest: str) -> int:
        return wh.conn.execute(
            "insert into audit.delivery (municipality_code, source, scheme, period, file_name, checksum_sha256,"
            " size_bytes, archive_path, status) values ('169', 'hr_absence', 'hr_payroll_csv', %s, 'f.csv',"
            " %s, 1, '/a', %s) returning delivery_id", (PERIOD, digest, status)).fetchone()[0]

    add("loaded", "a")
    add("superseded", "b")
    add("waiting", "c")
    with pytest.raises(psycopg.errors.UniqueViolation):
        add("loaded", "d")


def test_existing_warehouse_gets_the_index_keeping_the_newest_loaded(wh):
    wh.conn.execute("drop index audit.delivery_one_loaded_idx")
    ids = [wh.conn.execute(
        "insert into audit.delivery (municipality_code, source, scheme, period, file_name, checksum_sha256,"
        " size_bytes, archive_path, status) values ('169', 'hr_absence', 'hr_payroll_csv', %s, 'f.csv',"
        " %s, 1, '/a', 'loaded') returning delivery_id", (PERIOD, d)).fetchone()[0] for d in ("a", "b")]
    schema.ensure(wh.conn)
    schema.ensure(wh.conn)  # idempotent
    rows = wh.conn.execute("select delivery_id, status from audit.delivery order by delivery_id").fetchall()
    assert rows == [(ids[0], "superseded"), (ids[1], "loaded")]
    assert wh.conn.execute("select to_regclass('audit.delivery_one_loaded_idx')").fetchone()[0] is not None



def test_ensure_on_a_current_warehouse_takes_no_lock_a_load_holds(wh):
    """Every ingest task calls schema.ensure; on a current warehouse it must not queue for a lock that a
    concurrent load holds (ALTER TABLE ... ADD COLUMN IF NOT EXISTS takes ACCESS EXCLUSIVE even when the column
    exists: two ingests deadlocked on it under the executor, found by `make bench`)."""
    schema.ensure(wh.conn)
    with psycopg.connect(wh.url, autocommit=True) as loader:
        with loader.transaction():
            loader.execute("lock table raw.survey_response_csv, audit.delivery in row exclusive mode")
            with psycopg.connect(wh.url, autocommit=True) as other:
                other.execute("set lock_timeout = '3s'")
                schema.ensure(other)  # raises LockNotAvailable if it runs DDL
    # a missing relation is still noticed and defined again
    wh.conn.execute("drop index raw.survey_response_csv_delivery_idx")
    schema.ensure(wh.conn)
    assert wh.conn.execute("select to_regclass('raw.survey_response_csv_delivery_idx')").fetchone()[0] is not None


def test_ensure_runs_its_ddl_again_when_the_definition_changes(wh, monkeypatch):
    schema.ensure(wh.conn)
    before, _ = schema._definition()
    monkeypatch.setattr(schema, "PLATFORM_DDL", schema.PLATFORM_DDL + "\ncreate table if not exists audit.ensure_probe (x int);\n")
    after, relations = schema._definition()
    assert after != before and "audit.ensure_probe" in relations
    schema.ensure(wh.conn)
    assert wh.conn.execute("select to_regclass('audit.ensure_probe')").fetchone()[0] is not None
    schema.ensure(wh.conn)  # and is current again: the fast path, nothing to do
    assert schema._is_current(wh.conn, after, relations)
