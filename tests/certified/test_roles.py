"""Each role's grants and denials, proved as the role itself (`set role …`) on the demo warehouse."""

from __future__ import annotations

import psycopg
import pytest

pytestmark = pytest.mark.e2e

DENIED = psycopg.errors.InsufficientPrivilege


class As:
    """`set role` for the block, `reset role` after (also after an error)."""

    def __init__(self, conn, role: str):
        self.conn, self.role = conn, role

    def __enter__(self):
        self.conn.execute(psycopg.sql.SQL("set role {}").format(psycopg.sql.Identifier(self.role)))
        return self.conn

    def __exit__(self, *exc):
        self.conn.execute("reset role")


def count(conn, table: str) -> int:
    return conn.execute(f"select count(*) as n from {table}").fetchone()["n"]


def denied(conn, statement: str) -> bool:
    try:
        conn.execute(statement)
    except DENIED:
        return True
    return False


def test_roles_exist_and_apply_is_idempotent(demo_warehouse):
    from trivsel import roles

    out = roles.apply()
    assert out["created"] == []  # created by the DAG's plan step already
    names = {r["rolname"] for r in demo_warehouse.execute(
        "select rolname from pg_roles where rolname = any(%s)", (out["roles"],))}
    assert names == set(out["roles"])
    assert {"loader", "transformer", "bi_reader", "evaluator", "municipality_169", "municipality_461",
            "municipality_607"} <= names


def test_evaluator_reads_certified_only(demo_warehouse):
    with As(demo_warehouse, "evaluator") as conn:
        assert count(conn, "certified.survey_item_change") > 0
        assert count(conn, "certified.publication_log") > 0
        for table in ("marts.fct_survey_answer", "marts.survey_response_rate", "reporting.survey_item_change",
                      "raw.survey_answer_csv", "audit.delivery", "quarantine.delivery_issue",
                      "staging.stg_audit__delivery", "intermediate.int_units"):
            assert denied(conn, f"select 1 from {table} limit 1"), table
        assert denied(conn, "create table certified.x (i int)")
        assert denied(conn, "delete from certified.survey_item_change")


def test_bi_reader_reads_marts_reporting_certified(demo_warehouse):
    with As(demo_warehouse, "bi_reader") as conn:
        assert count(conn, "marts.fct_survey_answer") > 0
        assert count(conn, "reporting.survey_item_change") > 0
        assert count(conn, "certified.survey_item_change") > 0
        # all municipalities, the row-level security policy lets bi_reader see every row
        codes = {r["municipality_code"] for r in conn.execute(
            "select distinct municipality_code from marts.survey_response_rate")}
        assert {"169", "607"} <= codes
        assert denied(conn, "select 1 from raw.survey_answer_csv limit 1")
        assert denied(conn, "select 1 from audit.delivery limit 1")
        assert denied(conn, "delete from marts.fct_survey_answer")


def test_municipality_607_sees_only_607_in_marts(demo_warehouse):
    tables = [r["table_name"] for r in demo_warehouse.execute(
        """select c.table_name from information_schema.columns c
           join pg_tables t on t.schemaname = c.table_schema and t.tablename = c.table_name
           where c.table_schema = 'marts' and c.column_name = 'municipality_code'""")]
    assert "fct_survey_answer" in tables
    for t in tables:
        assert demo_warehouse.execute("select relrowsecurity from pg_class where oid = %s::regclass",
                                      (f"marts.{t}",)).fetchone()["relrowsecurity"], t
    seen_any = False
    with As(demo_warehouse, "municipality_607") as conn:
        for t in tables:
            codes = {r["municipality_code"] for r in conn.execute(
                f'select distinct municipality_code from marts."{t}"')}
            assert codes <= {"607"}, (t, codes)
            seen_any |= codes == {"607"}
        assert denied(conn, "select 1 from certified.survey_item_change limit 1")
        assert denied(conn, "select 1 from reporting.survey_item_change limit 1")
        assert denied(conn, "select 1 from raw.survey_answer_csv limit 1")
    assert seen_any
    with As(demo_warehouse, "municipality_169") as conn:
        codes = {r["municipality_code"] for r in conn.execute(
            "select distinct municipality_code from marts.fct_survey_answer")}
        assert codes == {"169"}


def test_loader_writes_raw_quarantine_audit_only(demo_warehouse):
    with As(demo_warehouse, "loader") as conn:
        conn.execute("begin")
        try:
            conn.execute("select count(*) from audit.delivery")
            conn.execute("update audit.delivery set reason = reason where false")
            conn.execute("delete from raw.survey_answer_csv where false")
            conn.execute("delete from quarantine.delivery_issue where false")
        finally:
            conn.execute("rollback")
        assert denied(conn, "select 1 from marts.fct_survey_answer limit 1")
        assert denied(conn, "select 1 from certified.survey_item_change limit 1")


def test_transformer_builds_but_does_not_load(demo_warehouse):
    with As(demo_warehouse, "transformer") as conn:
        conn.execute("begin")
        try:
            conn.execute("select count(*) from raw.survey_answer_csv")
            conn.execute("select count(*) from audit.delivery")
            conn.execute("create table staging.transformer_probe (i int)")
            conn.execute("create table marts.transformer_probe (i int)")
        finally:
            conn.execute("rollback")
        assert denied(conn, "insert into audit.delivery (municipality_code) values ('x')")
        assert denied(conn, "delete from raw.survey_answer_csv where false")
