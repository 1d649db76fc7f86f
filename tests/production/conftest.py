"""Fixtures of the production tests: Airflow started as `make up` starts it, on this session's warehouse.

`unscheduled_config` is a copy of municipalities.yml without a schedule: unpausing the DAG then starts only
the runs a test triggers (the empty-month rule of a scheduled run is not what these tests measure, and a
second full run would double their time).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml


@pytest.fixture(scope="session")
def unscheduled_config(warehouse_url: str, test_home: Path) -> Path:
    """municipalities.yml with `settings.schedule: null`: only triggered runs, no run for the current month."""
    from trivsel import settings

    cfg = yaml.safe_load(settings.config_path().read_text(encoding="utf-8"))
    cfg.setdefault("settings", {})["schedule"] = None
    out = test_home / "municipalities-unscheduled.yml"
    out.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return out


@pytest.fixture
def keep_built_tables(demo_run):
    """These tests empty every table of marts, reporting and person before their run (so that a run that
    builds nothing cannot pass). The session's warehouse is shared with every later test: whatever the
    outcome, the tables are put back as the demo built them (a copy in schema e2e_keep)."""
    import psycopg
    from psycopg import sql

    from trivsel import warehouse
    from trivsel.integrity import DEFAULT_SCHEMAS

    with psycopg.connect(warehouse.url(), autocommit=True) as conn:
        tables = conn.execute(
            """select n.nspname, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
                where n.nspname = any(%s) and c.relkind in ('r', 'p')""", (list(DEFAULT_SCHEMAS),)).fetchall()
        conn.execute("drop schema if exists e2e_keep cascade; create schema e2e_keep")
        for schema, table in tables:
            conn.execute(sql.SQL("create table {} as select * from {}").format(
                sql.Identifier("e2e_keep", f"{schema}__{table}"), sql.Identifier(schema, table)))
    yield
    with psycopg.connect(warehouse.url()) as conn, conn.transaction():
        for schema, table in tables:
            target = sql.Identifier(schema, table)
            if conn.execute("select to_regclass(%s)", (f'"{schema}"."{table}"',)).fetchone()[0] is None:
                continue
            conn.execute(sql.SQL("truncate {} cascade").format(target))
            conn.execute(sql.SQL("insert into {} select * from {}").format(
                target, sql.Identifier("e2e_keep", f"{schema}__{table}")))
        conn.execute("drop schema e2e_keep cascade")
