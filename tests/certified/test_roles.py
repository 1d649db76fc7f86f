"""Each role's grants and denials, proved as the role itself (`set role …`) on the demo warehouse.

test_every_relation_as_every_role enumerates every table and view of every schema and checks each role
against the rule written out below (EXPECTED_SCHEMAS, NON_SENSITIVE): independent of plugins/trivsel/roles.py,
so a grant roles.py gives too much (or too little) fails here.
"""

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
        with conn.transaction():  # a savepoint inside a transaction, a transaction otherwise
            conn.execute(statement)
    except DENIED:
        return True
    return False


#: The rule, per static role: the schemas whose every relation it reads (and only those).
EXPECTED_SCHEMAS = {
    "loader": {"raw", "quarantine", "audit", "gx"},  # gx: Great Expectations' views of a delivery's raw rows
    # dbt_test__audit: the failing rows the quality gate's tests store (--store-failures), the transformer's own
    "transformer": {"raw", "audit", "staging", "intermediate", "person", "marts", "reporting", "certified",
                    "seeds", "dbt_test__audit"},
    # certification reads what the certified models read and the deliveries' trail; never raw or staging
    # (in person: PUBLISHER_PERSON_TABLES only)
    "publisher": {"audit", "quarantine", "intermediate", "person", "marts", "reporting", "seeds", "certified"},
    "bi_reader": {"marts", "reporting", "certified"},
    "evaluator": {"certified"},
}
#: marts relations a municipality role reads without a row-level policy (dimensions: no figure, no person)
NON_SENSITIVE = {"dim_municipality", "dim_survey_item"}
PERSON_COLUMNS = {"employee_pseudonym", "respondent_key", "respondent_id"}
PERSON_TABLES = {"fct_absence_employee_month", "fct_survey_answer"}
#: the publisher reads no person table: the certified answer distribution sums int_survey_answer_counts
PUBLISHER_PERSON_TABLES: set[str] = set()


def _codes() -> list[str]:
    from trivsel.config import load_config

    return list(load_config().codes)


def _relations(conn) -> list[dict]:
    """Every table, view, materialized view and foreign table outside the system catalogs."""
    return conn.execute(
        r"""select n.nspname as schema, c.relname as name, c.relkind::text as kind,
                   c.relrowsecurity and exists (
                       select 1 from pg_policy p where p.polrelid = c.oid and p.polname = 'trivsel_municipality')
                   and exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attnum > 0
                               and not a.attisdropped and a.attname = 'municipality_code') as policed,
                   array(select a.attname::text from pg_attribute a where a.attrelid = c.oid and a.attnum > 0
                         and not a.attisdropped) as columns
            from pg_class c join pg_namespace n on n.oid = c.relnamespace
            where c.relkind in ('r', 'p', 'v', 'm', 'f')
              and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\_%'
            order by 1, 2""").fetchall()


def _expected(role: str, rel: dict) -> bool:
    if role.startswith("municipality_"):
        return rel["schema"] == "marts" and (rel["policed"] or rel["name"] in NON_SENSITIVE)
    if role == "publisher" and rel["schema"] == "person":
        return rel["name"] in PUBLISHER_PERSON_TABLES
    return rel["schema"] in EXPECTED_SCHEMAS[role]


def _reads(conn, rel: dict) -> bool:
    return not denied(conn, f'select 1 from "{rel["schema"]}"."{rel["name"]}" limit 1')


def test_person_level_tables_live_in_person_only(demo_warehouse):
    rels = _relations(demo_warehouse)
    person = {r["name"] for r in rels if r["schema"] == "person"}
    assert PERSON_TABLES <= person
    for t in PERSON_TABLES:
        assert count(demo_warehouse, f"person.{t}") > 0, t
    # no relation a reader role can reach holds a pseudonym or a respondent key
    leaked = [(r["schema"], r["name"]) for r in rels if r["schema"] in {"marts", "reporting", "certified"}
              and PERSON_COLUMNS & set(r["columns"])]
    assert leaked == []


def test_every_relation_as_every_role(demo_warehouse):
    codes = _codes()
    assert {"169", "461", "607"} <= set(codes)
    rels = _relations(demo_warehouse)
    assert {r["schema"] for r in rels} >= {"raw", "quarantine", "audit", "staging", "intermediate", "person",
                                           "marts", "reporting", "certified", "seeds"}
    assert any(r["kind"] == "v" for r in rels)  # the staging views are enumerated too
    wrong = []
    for role in (*EXPECTED_SCHEMAS, *(f"municipality_{c}" for c in codes)):
        granted = denials = 0
        with As(demo_warehouse, role) as conn:
            for rel in rels:
                want, got = _expected(role, rel), _reads(conn, rel)
                if want != got:
                    wrong.append((role, rel["schema"], rel["name"], "expected " + ("read" if want else "denied")))
                granted += got
                denials += not got
        assert granted and denials, (role, granted, denials)  # both proven for every role
    assert wrong == []


def test_municipality_roles_see_only_their_rows_in_every_policed_relation(demo_warehouse):
    policed = [r for r in _relations(demo_warehouse) if r["schema"] == "marts" and r["policed"]]
    assert {"absence_unit_year", "survey_response_rate", "incident_rate_year"} <= {r["name"] for r in policed}
    for code in _codes():
        seen = 0
        for rel in policed:
            table = f'marts."{rel["name"]}"'
            own = demo_warehouse.execute(f"select count(*) as n from {table} where municipality_code::text = %s",
                                         (code,)).fetchone()["n"]
            with As(demo_warehouse, f"municipality_{code}") as conn:
                row = conn.execute(f"select count(*) as n, count(*) filter (where municipality_code::text <> %s)"
                                   f" as other from {table}", (code,)).fetchone()
            assert row["other"] == 0, (code, rel["name"])
            assert row["n"] == own, (code, rel["name"], row["n"], own)  # all its own rows, not fewer
            seen += own
        assert seen > 0, code


def test_unpoliced_marts_table_fails_closed(demo_warehouse):
    """A marts table without a municipality column and not listed as non-sensitive: bi_reader reads it, a
    municipality role does not; one with a person column: no reader role does."""
    conn = demo_warehouse
    with conn.transaction(force_rollback=True):
        conn.execute("create table marts.roles_probe_figures (unit_name text, n int)")
        conn.execute("insert into marts.roles_probe_figures values ('x', 1)")
        conn.execute("create table marts.roles_probe_people (municipality_code text, respondent_key text)")
        conn.execute("insert into marts.roles_probe_people values ('607', '607:2012-05:1')")
        conn.execute("create table marts.roles_probe_policed (municipality_code text, n int)")
        conn.execute("insert into marts.roles_probe_policed values ('607', 1), ('169', 2)")
        for t in ("roles_probe_figures", "roles_probe_people", "roles_probe_policed"):
            conn.execute("select audit.trivsel_secure_table('marts', %s)", (t,))
        with As(conn, "bi_reader"):
            assert count(conn, "marts.roles_probe_figures") == 1
            assert count(conn, "marts.roles_probe_policed") == 2
            assert denied(conn, "select 1 from marts.roles_probe_people")
        with As(conn, "municipality_607"):
            assert denied(conn, "select 1 from marts.roles_probe_figures")
            assert denied(conn, "select 1 from marts.roles_probe_people")
            assert conn.execute("select array_agg(n) as n from marts.roles_probe_policed").fetchone()["n"] == [1]
        with As(conn, "evaluator"):
            assert denied(conn, "select 1 from marts.roles_probe_figures")


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
        for table in ("person.fct_survey_answer", "person.fct_absence_employee_month",
                      "marts.survey_response_rate", "reporting.survey_item_change",
                      "raw.survey_response_csv", "audit.delivery", "quarantine.delivery_issue",
                      "staging.stg_audit__delivery", "intermediate.int_units"):
            assert denied(conn, f"select 1 from {table} limit 1"), table
        assert denied(conn, "create table certified.x (i int)")
        assert denied(conn, "delete from certified.survey_item_change")


def test_bi_reader_reads_marts_reporting_certified(demo_warehouse):
    with As(demo_warehouse, "bi_reader") as conn:
        assert count(conn, "marts.survey_response_rate") > 0
        assert denied(conn, "select 1 from person.fct_survey_answer limit 1")
        assert denied(conn, "select 1 from person.fct_absence_employee_month limit 1")
        assert count(conn, "reporting.survey_item_change") > 0
        assert count(conn, "certified.survey_item_change") > 0
        # all municipalities, the row-level security policy lets bi_reader see every row
        codes = {r["municipality_code"] for r in conn.execute(
            "select distinct municipality_code from marts.survey_response_rate")}
        assert {"169", "607"} <= codes
        assert denied(conn, "select 1 from raw.survey_response_csv limit 1")
        assert denied(conn, "select 1 from audit.delivery limit 1")
        assert denied(conn, "delete from marts.survey_response_rate")


def test_municipality_607_sees_only_607_in_marts(demo_warehouse):
    tables = [r["table_name"] for r in demo_warehouse.execute(
        """select c.table_name from information_schema.columns c
           join pg_tables t on t.schemaname = c.table_schema and t.tablename = c.table_name
           where c.table_schema = 'marts' and c.column_name = 'municipality_code'""")]
    assert "survey_response_rate" in tables
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
        assert denied(conn, "select 1 from raw.survey_response_csv limit 1")
    assert seen_any
    with As(demo_warehouse, "municipality_169") as conn:
        codes = {r["municipality_code"] for r in conn.execute(
            "select distinct municipality_code from marts.survey_response_rate")}
        assert codes == {"169"}
        assert denied(conn, "select 1 from person.fct_survey_answer limit 1")


def test_loader_writes_raw_quarantine_audit_only(demo_warehouse):
    with As(demo_warehouse, "loader") as conn:
        conn.execute("begin")
        try:
            conn.execute("select count(*) from audit.delivery")
            conn.execute("update audit.delivery set reason = reason where false")
            conn.execute("delete from raw.survey_response_csv where false")
            conn.execute("delete from quarantine.delivery_issue where false")
        finally:
            conn.execute("rollback")
        assert denied(conn, "select 1 from person.fct_survey_answer limit 1")
        assert denied(conn, "select 1 from certified.survey_item_change limit 1")


def test_transformer_builds_but_does_not_load(demo_warehouse):
    with As(demo_warehouse, "transformer") as conn:
        conn.execute("begin")
        try:
            conn.execute("select count(*) from raw.survey_response_csv")
            conn.execute("select count(*) from audit.delivery")
            conn.execute("create table staging.transformer_probe (i int)")
            conn.execute("create table marts.transformer_probe (i int)")
        finally:
            conn.execute("rollback")
        assert denied(conn, "insert into audit.delivery (municipality_code) values ('x')")
        assert denied(conn, "delete from raw.survey_response_csv where false")


def test_apply_drops_a_leftover_person_level_table_in_marts(demo_warehouse):
    """A warehouse built before schema person has fct_survey_answer in marts: closed at once (a person
    column), dropped by the next apply()."""
    from trivsel import roles

    conn = demo_warehouse
    conn.execute("create table marts.fct_survey_answer (municipality_code text, respondent_key text)")
    conn.execute("insert into marts.fct_survey_answer values ('607', '607:2012-05:1')")
    conn.execute("select audit.trivsel_secure_table('marts', 'fct_survey_answer')")
    for role in ("bi_reader", "municipality_607", "evaluator"):
        with As(conn, role):
            assert denied(conn, "select 1 from marts.fct_survey_answer"), role
    roles.apply()
    assert conn.execute("select to_regclass('marts.fct_survey_answer') is null as gone").fetchone()["gone"]
    assert count(conn, "person.fct_survey_answer") > 0  # the real one is untouched
