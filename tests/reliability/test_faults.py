"""Faults for real: a load killed mid-COPY, two loads of one period at once, a file far larger than expected.

The loads run in subprocesses (the generic path, loading.ingest_municipality) against the test's own
database; the test watches PostgreSQL (pg_stat_progress_copy, pg_locks) to act at the right moment.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from rel_helpers import sample_file

from trivsel import loading
from trivsel.sources import all_schemes

REGISTRY = "169/incidents/2013-12/arbejdsskader_2013.csv"
PERIOD = "2013-12"

INGEST = """
import json, resource, sys
from trivsel import loading
out = loading.ingest_municipality(sys.argv[1], sys.argv[2], sys.argv[3])
print(json.dumps({"outcomes": [[o.file_name, o.status, o.rows, o.delivery_id] for o in out],
                  "max_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


@pytest.fixture(autouse=True)
def _need_registry():
    if "ohs_registry_export" not in all_schemes():
        pytest.fail("scheme module ohs_registry_export is not registered (trivsel.sources.SCHEMES)")


def big_registry(sample_root: Path, dest: Path, target_bytes: int) -> int:
    """A valid ohs_registry_export file of about target_bytes: the sample's rows, repeated with unique case ids
    and a long free-text description. Written streaming. Returns the number of data rows."""
    lines = sample_file(sample_root, REGISTRY).read_text(encoding="utf-8-sig").splitlines()
    header = lines[0].split(";")
    templates = [line.split(";") for line in lines[1:] if line.strip()]
    i_case, i_text = header.index("Sagsnr"), header.index("Beskrivelse")
    filler = ("Medarbejderen blev truet under aftensmaden og tilkaldte hjælp. " * 12).strip()
    dest.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with dest.open("w", encoding="utf-8", newline="") as fh:
        fh.write(lines[0] + "\n")
        while fh.tell() < target_bytes:
            for t in templates:
                row = list(t)
                n += 1
                row[i_case] = f"BIG-2013-{n:08d}"
                row[i_text] = f"{filler} #{n}"
                fh.write(";".join(row) + "\n")
    return n


def ingest_process(wh, code: str, period: str, run_id: str, **kwargs) -> subprocess.Popen:
    env = dict(os.environ, WAREHOUSE_URL=wh.url, TRIVSEL_INBOX=str(wh.inbox), TRIVSEL_ARCHIVE=str(wh.archive))
    return subprocess.Popen([sys.executable, "-c", INGEST, code, period, run_id], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def result(proc: subprocess.Popen, timeout: float = 600) -> dict:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def visible_rows(conn, table: str, period: str) -> int:
    """Rows staging can see: those of loaded deliveries (what {{ loaded_rows() }} selects)."""
    return conn.execute(f'select count(*) from raw."{table}" r join audit.delivery d using (delivery_id)'
                        " where d.status = 'loaded' and d.period = %s", (period,)).fetchone()[0]


def test_kill_mid_copy_leaves_no_partial_period_and_the_retry_succeeds(wh, sample_root):
    path = wh.inbox / REGISTRY
    n = big_registry(sample_root, path, 60 * 1024 * 1024)
    proc = ingest_process(wh, "169", PERIOD, "killed-run")
    deadline = time.monotonic() + 300
    copying = None
    while time.monotonic() < deadline and proc.poll() is None:
        copying = wh.conn.execute(
            "select p.bytes_processed from pg_stat_progress_copy p join pg_database d on d.oid = p.datid"
            " where d.datname = %s and p.relid = 'raw.ohs_registration'::regclass and p.bytes_processed > 0",
            (wh.name,)).fetchone()
        if copying:
            break
        time.sleep(0.02)
    assert copying, f"never saw the COPY (rc={proc.poll()}): {proc.stderr.read()[-2000:] if proc.poll() else ''}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # the server notices the dead client and rolls its transaction back
    deadline = time.monotonic() + 30
    while wh.conn.execute("select count(*) from pg_stat_activity where datname = %s and pid <> pg_backend_pid()",
                          (wh.name,)).fetchone()[0] and time.monotonic() < deadline:
        time.sleep(0.1)
    stale = wh.conn.execute("select delivery_id, status from audit.delivery").fetchall()
    assert [s for _, s in stale] == ["validating"], stale
    assert wh.conn.execute("select count(*) from raw.ohs_registration").fetchone()[0] == 0, "a partial COPY is visible"
    assert visible_rows(wh.conn, "ohs_registration", PERIOD) == 0
    # the retry cleans the interrupted delivery up and loads the file whole
    outcomes = loading.ingest_municipality("169", PERIOD, "retry")
    assert [(o.status, o.rows) for o in outcomes] == [("loaded", n)], [o.line() for o in outcomes]
    assert visible_rows(wh.conn, "ohs_registration", PERIOD) == n
    status, reason = wh.conn.execute("select status, reason from audit.delivery where delivery_id = %s",
                                     (stale[0][0],)).fetchone()
    assert status == "quarantined" and reason.startswith("interrupted load"), (status, reason)
    assert wh.conn.execute("select check_name from quarantine.delivery_issue where delivery_id = %s",
                           (stale[0][0],)).fetchone()[0] == "interrupted"
    # and the run after that changes nothing
    assert [o.status for o in loading.ingest_municipality("169", PERIOD, "again")] == ["unchanged"]


def test_interrupted_after_copy_commit_is_cleaned_up(wh, sample_root):
    """A load that died after its COPY committed but before the decision: rows under a `validating` delivery."""
    wh.copy_sample(sample_root, REGISTRY)
    first = loading.ingest_municipality("169", PERIOD, "first")[0]
    n = first.rows
    # simulate the crash window: put the delivery back to validating with its rows still in raw
    wh.conn.execute("update audit.delivery set status = 'validating' where delivery_id = %s", (first.delivery_id,))
    assert visible_rows(wh.conn, "ohs_registration", PERIOD) == 0, "validating rows are never visible"
    again = loading.ingest_municipality("169", PERIOD, "second")[0]
    assert (again.status, again.rows) == ("loaded", n), again.line()
    assert wh.conn.execute("select count(*) from raw.ohs_registration where delivery_id = %s",
                           (first.delivery_id,)).fetchone()[0] == 0
    assert visible_rows(wh.conn, "ohs_registration", PERIOD) == n


def test_two_loads_of_one_period_at_once(wh, sample_root):
    """Both loads start while the period's lock is held; both wait; one loads, the other finds it unchanged."""
    wh.copy_sample(sample_root, REGISTRY)
    key = f"trivsel:ingest:169:{PERIOD}"
    with psycopg.connect(wh.url, autocommit=True) as holder:
        holder.execute("select pg_advisory_lock(hashtext(%s))", (key,))
        procs = [ingest_process(wh, "169", PERIOD, f"run-{i}") for i in (1, 2)]
        deadline = time.monotonic() + 120
        waiting = 0
        while time.monotonic() < deadline:
            waiting = wh.conn.execute(
                "select count(*) from pg_locks l join pg_stat_activity a using (pid)"
                " where l.locktype = 'advisory' and not l.granted and a.datname = %s", (wh.name,)).fetchone()[0]
            if waiting == 2 or any(p.poll() is not None for p in procs):
                break
            time.sleep(0.1)
        assert waiting == 2, "both loads should wait for the period's lock"
        holder.execute("select pg_advisory_unlock(hashtext(%s))", (key,))
    results = [result(p) for p in procs]
    statuses = sorted(r["outcomes"][0][1] for r in results)
    assert statuses == ["loaded", "unchanged"], results
    rows = next(r["outcomes"][0][2] for r in results if r["outcomes"][0][1] == "loaded")
    # the result equals one load: one delivery, its rows once
    assert wh.conn.execute("select status, rows_loaded from audit.delivery").fetchall() == [("loaded", rows)]
    assert visible_rows(wh.conn, "ohs_registration", PERIOD) == rows
    assert wh.conn.execute("select count(*), count(distinct case_id) from raw.ohs_registration").fetchone() == (rows, rows)


def test_a_file_far_larger_than_expected_streams_in_bounded_memory(wh, sample_root):
    """~128 MB delivered where a few KB are usual: it loads, and the load's peak RSS stays far below its size."""
    size = 128 * 1024 * 1024
    n = big_registry(sample_root, wh.inbox / REGISTRY, size)
    # baseline: the same process with a small file (imports, GX, psycopg)
    small = wh.tmp / "small"
    env_small = dict(os.environ, WAREHOUSE_URL=wh.url, TRIVSEL_INBOX=str(small), TRIVSEL_ARCHIVE=str(wh.archive))
    big_registry(sample_root, small / REGISTRY, 64 * 1024)
    base = subprocess.run([sys.executable, "-c", INGEST, "169", PERIOD, "small"], env=env_small,
                          capture_output=True, text=True, timeout=600)
    assert base.returncode == 0, base.stderr[-2000:]
    base_rss = json.loads(base.stdout.strip().splitlines()[-1])["max_rss_kb"] * 1024
    got = result(ingest_process(wh, "169", PERIOD, "big"), timeout=900)
    assert [o[1] for o in got["outcomes"]] == ["loaded"], got
    assert got["outcomes"][0][2] == n
    growth = got["max_rss_kb"] * 1024 - base_rss
    print(f"file {size / 2**20:.0f} MiB, {n} rows: peak RSS {got['max_rss_kb'] / 1024:.0f} MiB, "
          f"baseline {base_rss / 2**20:.0f} MiB, growth {growth / 2**20:.0f} MiB")
    assert growth < size / 4, f"peak RSS grew by {growth / 2**20:.0f} MiB for a {size / 2**20:.0f} MiB file"
