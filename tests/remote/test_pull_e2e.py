"""The monthly DAG (`trivsel run`, i.e. `airflow dags test`) pulling from real servers gives the same
warehouse as from the local inbox: 169 publishes on SFTP, 461 on HTTPS, 607 drops into the local inbox.

Two warehouses (two databases in the session's server), two inboxes: one filled with the sample
deliveries as `make demo` does, one left to the pull step. Both run the same periods with the same config
but for the locations; then every marts and reporting table must hold the same rows.
"""

from __future__ import annotations

import shutil
import time

import psycopg
import pytest
import yaml
from psycopg import sql

from .conftest import HTTP_CONN, SFTP_CONN, config_with, drop_files, https_connection, sftp_connection

PERIODS = ("2012-05", "2013-12")
#: Columns that differ between two loads of the same bytes (ids, times, paths).
VOLATILE = ("delivery_id", "run_id", "archive_path", "received_at", "decided_at", "last_received_at", "pulled_at",
            "computed_at")


def _database(name: str) -> str:
    from trivsel import warehouse

    with psycopg.connect(warehouse.admin_url(), autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    return warehouse.url(name)


def _run(monkeypatch, tmp, name: str, config_data: dict, inbox_from=None, codes=()) -> tuple[str, int]:
    """Run every period; return the warehouse URL and the last run's exit code.

    Ingest (pull, then load) must succeed in every run. (The first run on an empty warehouse may trip a dbt
    relationships test that runs before its other model exists; the last run rebuilds every model.)
    """
    from trivsel import cli

    url = _database(name)
    home = tmp / name
    inbox = home / "inbox"
    inbox.mkdir(parents=True)
    for code in codes:
        shutil.copytree(inbox_from / code, inbox / code)
    cfg = home / "municipalities.yml"
    cfg.write_text(yaml.safe_dump(config_data, allow_unicode=True, sort_keys=False))
    monkeypatch.setenv("WAREHOUSE_URL", url)
    monkeypatch.setenv("TRIVSEL_INBOX", str(inbox))
    monkeypatch.setenv("TRIVSEL_ARCHIVE", str(home / "archive"))
    monkeypatch.setenv("TRIVSEL_CONFIG", str(cfg))
    rc = None
    for period in PERIODS:
        started = time.monotonic()
        rc = cli.run_period(period)
        failed = cli._failed_tasks(period)
        print(f"{name} {period}: rc {rc} in {time.monotonic() - started:.0f}s; failed: {failed}")
        assert not [t for t in failed if t.startswith(("plan", "lanes", "ingest"))], failed
    return url, rc


def _tables(conn) -> list[tuple[str, str]]:
    return conn.execute("select table_schema, table_name from information_schema.tables"
                        " where table_schema in ('marts', 'reporting') order by 1, 2").fetchall()


def _rows(conn, schema: str, table: str) -> list[tuple]:
    cols = [r[0] for r in conn.execute(
        "select column_name from information_schema.columns where table_schema = %s and table_name = %s"
        " order by ordinal_position", (schema, table)).fetchall() if r[0] not in VOLATILE]
    q = sql.SQL("select {} from {}.{}").format(sql.SQL(", ").join(map(sql.Identifier, cols)),
                                               sql.Identifier(schema), sql.Identifier(table))
    return sorted(tuple(str(v) for v in row) for row in conn.execute(q).fetchall())


@pytest.mark.e2e
def test_the_dag_pulling_from_sftp_and_https_gives_the_same_marts_as_the_local_inbox(
        warehouse_url, sshd, https, drop, remote_root, monkeypatch):
    tmp = remote_root / "e2e"
    monkeypatch.setenv(f"AIRFLOW_CONN_{SFTP_CONN.upper()}", sftp_connection(sshd))
    monkeypatch.setenv(f"AIRFLOW_CONN_{HTTP_CONN.upper()}", https_connection(https))
    late = {("169", "hr_absence"): {"due_day": 3}}  # 169 sends no absence file for 2012-05: overdue
    _, local_cfg = config_with(late)
    remote = dict(late)
    for source in ("survey", "hr_absence", "incidents", "use_of_force"):
        remote[("169", source)] = {**remote.get(("169", source), {}),
                                   "location": f"sftp://127.0.0.1:{sshd['port']}{drop}/169/{source}",
                                   "conn_id": SFTP_CONN}
    for source in ("survey", "incidents", "use_of_force"):
        remote[("461", source)] = {"location": f"https://127.0.0.1:{https['port']}/listing/461/{source}.json",
                                   "conn_id": HTTP_CONN}
    _, remote_cfg = config_with(remote)

    local_url, local_rc = _run(monkeypatch, tmp, "pull_e2e_local", local_cfg, drop, ("169", "461", "607"))
    remote_url, remote_rc = _run(monkeypatch, tmp, "pull_e2e_remote", remote_cfg, drop, ("607",))
    assert local_rc == 0 and remote_rc == 0

    # the pull put exactly the sample files of those periods into the inbox
    remote_inbox = drop_files(tmp / "pull_e2e_remote" / "inbox")
    expected = {k: v for k, v in drop_files(drop).items() if k.split("/")[2] in PERIODS}
    assert {k: v for k, v in remote_inbox.items() if k.split("/")[2] in PERIODS} == expected

    with psycopg.connect(local_url) as lc, psycopg.connect(remote_url) as rc:
        tables = _tables(lc)
        assert ("marts", "delivery_coverage") in tables and len(tables) > 3
        assert _tables(rc) == tables
        for schema, table in tables:
            assert _rows(rc, schema, table) == _rows(lc, schema, table), f"{schema}.{table} differs"
        assert rc.execute("select status from marts.delivery_coverage where municipality_code = '169'"
                          " and source = 'hr_absence' and period = '2012-05'").fetchone() == ("overdue",)
        n_remote = rc.execute("select count(*) from audit.remote_file where status = 'pulled'").fetchone()[0]
        assert n_remote == len([k for k in expected if k.split("/")[0] in ("169", "461")])
        n_deliveries = rc.execute("select count(*) from audit.delivery").fetchone()[0]
        last_pull = rc.execute("select max(pulled_at) from audit.remote_file").fetchone()[0]

    # the DAG logged the late municipality and did not fail for it
    from trivsel import settings

    log = settings.home() / "logs" / "run-2012-05.log"
    assert "OVERDUE: municipality 169 (Høje-Taastrup) has not delivered hr_absence for 2012-05" in log.read_text()
    assert "s3cret" not in log.read_text()

    # a second run pulls nothing new and loads nothing new
    from trivsel import cli

    assert cli.run_period(PERIODS[0]) == 0
    with psycopg.connect(remote_url) as rc:
        assert rc.execute("select count(*) from audit.delivery").fetchone()[0] == n_deliveries
        assert rc.execute("select max(pulled_at) from audit.remote_file").fetchone()[0] == last_pull
        assert rc.execute("select count(*) from audit.delivery where status = 'loaded'").fetchone()[0] > 0
    assert "0 new, 0 unchanged after download" in log.read_text()
