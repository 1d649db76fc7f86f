"""The build lease (trivsel.build_lease) against a real PostgreSQL: one run's model phase at a time.

Threads stand in for two runs' gates: the second waits until the first releases, a crashed holder's lease
expires, a retried gate of the same run re-enters (and refreshes), and the gate pins only after the lease.
No dbt runs here; tests/reliability/test_concurrent_runs_e2e.py runs two real DAG runs.
"""

from __future__ import annotations

import logging
import threading
import time

import psycopg

from trivsel import build_lease, pipeline, snapshot


def _conn(wh) -> psycopg.Connection:
    return psycopg.connect(wh.url, autocommit=True)


def test_a_free_lease_is_taken_and_released(wh):
    assert build_lease.acquire(wh.conn, "run-a", ttl=5, poll_seconds=0.05) < 1
    assert build_lease.holder(wh.conn)[0] == "run-a"
    assert build_lease.release(wh.conn, "run-a") is True
    assert build_lease.holder(wh.conn) == (None, None)
    assert build_lease.release(wh.conn, "run-a") is False, "a second release is a no-op"
    history = wh.conn.execute("select run_id, released_at is not null, released_by"
                              " from audit.build_lease_history").fetchall()
    assert history == [("run-a", True, "released")]


def test_a_second_run_waits_until_the_first_releases(wh, caplog):
    build_lease.acquire(wh.conn, "run-a", ttl=5, poll_seconds=0.05)
    got: dict[str, float] = {}

    def second():
        with _conn(wh) as c:
            build_lease.acquire(c, "run-b", ttl=5, poll_seconds=0.05)
            got["at"] = time.monotonic()

    with caplog.at_level(logging.INFO, logger="trivsel.build_lease"):
        t = threading.Thread(target=second)
        t.start()
        time.sleep(0.6)
        assert "at" not in got, "run-b took the lease run-a holds"
        assert build_lease.holder(wh.conn)[0] == "run-a"
        released = time.monotonic()
        build_lease.release(wh.conn, "run-a")
        t.join(10)
    assert not t.is_alive()
    assert got["at"] >= released
    assert build_lease.holder(wh.conn)[0] == "run-b"
    assert "waiting for run run-a's model build" in caplog.text
    order = wh.conn.execute("select run_id from audit.build_lease_history order by acquired_at").fetchall()
    assert order == [("run-a",), ("run-b",)]


def test_only_one_of_many_racing_runs_holds_the_lease_at_a_time(wh):
    inside: list[str] = []
    overlap: list[tuple[str, str]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(4)

    def run(name: str):
        with _conn(wh) as c:
            barrier.wait()
            build_lease.acquire(c, name, ttl=5, poll_seconds=0.02)
            with lock:
                if inside:
                    overlap.append((inside[0], name))
                inside.append(name)
            time.sleep(0.15)
            with lock:
                inside.remove(name)
            assert build_lease.release(c, name)

    threads = [threading.Thread(target=run, args=(f"run-{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    assert overlap == []
    assert wh.conn.execute("select count(*), count(released_at) from audit.build_lease_history").fetchone() == (4, 4)


def test_a_crashed_runs_lease_expires(wh):
    build_lease.acquire(wh.conn, "crashed", ttl=0.01, poll_seconds=0.05)  # 0.6 s
    with _conn(wh) as c:
        try:
            build_lease.acquire(c, "next", ttl=5, poll_seconds=0.05, timeout=0.2)
        except build_lease.LeaseTimeout as exc:
            assert "crashed" in str(exc)
        else:
            raise AssertionError("the lease was taken before it expired")
        waited = build_lease.acquire(c, "next", ttl=5, poll_seconds=0.05, timeout=10)
    assert waited < 10
    assert build_lease.holder(wh.conn)[0] == "next"
    assert build_lease.release(wh.conn, "crashed") is False, "the expired holder cannot release the new one's"
    assert build_lease.holder(wh.conn)[0] == "next"
    assert wh.conn.execute("select released_by from audit.build_lease_history where run_id = 'crashed'"
                           ).fetchone() == ("expired",)


def test_the_same_run_re_enters_and_refreshes(wh):
    build_lease.acquire(wh.conn, "run-a", ttl=0.02, poll_seconds=0.05)
    acquired, first_expiry = wh.conn.execute("select acquired_at, expires_at from audit.build_lease").fetchone()
    time.sleep(0.1)
    assert build_lease.acquire(wh.conn, "run-a", ttl=5, poll_seconds=0.05, timeout=0.5) < 0.5  # a retried gate
    again, expiry = wh.conn.execute("select acquired_at, expires_at from audit.build_lease").fetchone()
    assert again == acquired and expiry > first_expiry
    assert wh.conn.execute("select count(*) from audit.build_lease_history").fetchone() == (1,)


def test_the_gate_pins_only_after_the_lease(wh, monkeypatch):
    """pipeline.loads_done: a run that waited pins the deliveries the other run committed meanwhile."""
    monkeypatch.setattr(build_lease, "DEFAULT_POLL_SECONDS", 0.05)
    monkeypatch.setattr(build_lease, "ttl_minutes", lambda: 5)
    build_lease.acquire(wh.conn, "first", ttl=5, poll_seconds=0.05)
    t = threading.Thread(target=pipeline.loads_done, args=("2014-01", "second"))
    t.start()
    time.sleep(0.5)
    assert not snapshot.is_pinned(wh.conn, "second"), "the second run pinned while the first built"
    # the first run's delivery, committed before it releases
    did = wh.conn.execute(
        "insert into audit.delivery (municipality_code, source, period, file_name, checksum_sha256, size_bytes,"
        " archive_path, status) values ('169', 'hr_absence', '2014-01', 'f.csv', 'x', 1, 'a', 'loaded')"
        " returning delivery_id").fetchone()[0]
    build_lease.release(wh.conn, "first")
    t.join(10)
    assert not t.is_alive()
    assert snapshot.loaded_ids(wh.conn, "second") == {did}
    assert build_lease.holder(wh.conn)[0] == "second"
    assert pipeline.release_build("second", "run_outcome") is True
