"""Least privilege in use, not only granted: each stage of the demo run connected as its own role.

After the monthly DAG over every sample period (the session's demo_run):
- no relation of the warehouse is owned by a superuser, and each is owned by the stage that writes it
  (written out here, independent of roles.OWNERS);
- the server log (log_connections) shows loader, transformer and publisher logging in to the warehouse, and
  the report logging in as evaluator;
- the stage logins are LOGIN roles without superuser, each with its own generated password (mode 0600);
- the report and the export refuse to run when they cannot log in as, or take, the evaluator role.
"""

from __future__ import annotations

import re
import stat
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

#: schema -> the stage role that must own it and every relation in it
EXPECTED_OWNER = {
    "raw": "loader", "quarantine": "loader", "audit": "loader", "gx": "loader",
    "staging": "transformer", "intermediate": "transformer", "person": "transformer", "marts": "transformer",
    "reporting": "transformer", "seeds": "transformer", "dbt_test__audit": "transformer",
    "certified": "publisher",
}
STAGES = ("loader", "transformer", "publisher", "evaluator")


def _relations(conn) -> list[dict]:
    return conn.execute(
        r"""select n.nspname as schema, c.relname as name, c.relkind::text as kind,
                   pg_get_userbyid(c.relowner) as owner, r.rolsuper as owner_is_superuser
            from pg_class c join pg_namespace n on n.oid = c.relnamespace join pg_roles r on r.oid = c.relowner
            where c.relkind in ('r', 'p', 'v', 'm', 'f', 'S')
              and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\_%'
            order by 1, 2""").fetchall()


def test_no_relation_is_owned_by_a_superuser(demo_warehouse):
    rels = _relations(demo_warehouse)
    assert {r["schema"] for r in rels} >= {"raw", "audit", "marts", "reporting", "certified", "person"}
    by_superuser = [(r["schema"], r["name"], r["owner"]) for r in rels if r["owner_is_superuser"]]
    assert not by_superuser, by_superuser


def test_every_relation_is_owned_by_the_stage_that_writes_it(demo_warehouse):
    rels = _relations(demo_warehouse)
    unexpected_schema = sorted({r["schema"] for r in rels} - set(EXPECTED_OWNER))
    assert not unexpected_schema, f"relations in schemas no stage owns: {unexpected_schema}"
    wrong = [(r["schema"], r["name"], r["owner"]) for r in rels if r["owner"] != EXPECTED_OWNER[r["schema"]]]
    assert not wrong, wrong
    schemas = {r["nspname"]: r["owner"] for r in demo_warehouse.execute(
        "select nspname, pg_get_userbyid(nspowner) as owner from pg_namespace where nspname = any(%s)",
        (list(EXPECTED_OWNER),))}
    assert {s: o for s, o in schemas.items() if o != EXPECTED_OWNER[s]} == {}


def test_stage_roles_log_in_without_superuser_each_with_its_own_password(demo_warehouse, test_home):
    from trivsel import warehouse

    rows = {r["rolname"]: r for r in demo_warehouse.execute(
        "select rolname, rolcanlogin, rolsuper, rolcreaterole, rolbypassrls from pg_roles where rolname = any(%s)",
        (list(STAGES),))}
    assert set(rows) == set(STAGES)
    for r in rows.values():
        assert r["rolcanlogin"] and not (r["rolsuper"] or r["rolcreaterole"] or r["rolbypassrls"]), r
    passwords = {}
    for role in STAGES:
        f = warehouse.role_password_file(role)
        assert f.parent == test_home / "pg", f
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, (f, oct(f.stat().st_mode))
        passwords[role] = f.read_text().strip()
        assert len(passwords[role]) >= 32
        with warehouse.connect(role) as conn:
            assert conn.execute("select session_user, current_user").fetchone() == (role, role)
    assert len(set(passwords.values())) == len(STAGES)
    # a wrong password is refused by the server: the password is what logs the stage in
    bad = re.sub(r"://([^:]+):[^@]+@", r"://\1:wrong-password@", warehouse.role_url("loader"))
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(bad, connect_timeout=5).close()


def _authorized_logins(log_file: Path) -> dict[str, int]:
    """user -> number of connections authorized to database warehouse, from the server log."""
    seen: dict[str, int] = {}
    for m in re.finditer(r"connection authorized: user=(\S+) database=warehouse", log_file.read_text(errors="replace")):
        seen[m.group(1)] = seen.get(m.group(1), 0) + 1
    return seen


def test_the_stages_logged_in_as_their_roles(demo_warehouse, tmp_path):
    from trivsel import report, warehouse

    # they did their work as those roles: deliveries loaded and validated, models built, a version certified
    statuses = {r["status"]: r["n"] for r in demo_warehouse.execute(
        "select status, count(*) as n from audit.delivery group by status")}
    assert statuses.get("loaded", 0) > 0, statuses
    denied_reasons = demo_warehouse.execute(
        "select count(*) as n from quarantine.delivery_issue where reason ilike '%%permission denied%%'"
        " or reason ilike '%%must be owner%%'").fetchone()["n"]
    assert denied_reasons == 0, "a stage lacked a privilege it needs"
    assert demo_warehouse.execute("select count(*) as n from marts.survey_response_rate").fetchone()["n"] > 0
    assert demo_warehouse.execute("select count(*) as n from certified.publication_log").fetchone()["n"] > 0
    # the publisher built certified from every municipality's rows (row-level security lets it read them all)
    for table, marts_table in (("survey_response_rate", "survey_response_rate"),
                               ("delivery_coverage", "delivery_coverage")):
        published = {r["municipality_code"] for r in demo_warehouse.execute(
            f"select distinct municipality_code from certified.{table}")}
        built = {r["municipality_code"] for r in demo_warehouse.execute(
            f"select distinct municipality_code from marts.{marts_table}")}
        codes = built - {"ALL"}
        assert codes and codes <= published, (table, published, built)
    log_file = warehouse.embedded().log_file
    logins = _authorized_logins(log_file)
    # ingest, the dbt tasks and the statistics, certification: each as its role during the DAG run
    for role in ("loader", "transformer", "publisher"):
        assert logins.get(role, 0) > 0, (role, logins)
    before = logins.get("evaluator", 0)
    report.write_report(tmp_path / "report.html")
    assert _authorized_logins(log_file).get("evaluator", 0) > before, "the report did not log in as evaluator"


def test_report_and_export_refuse_without_the_evaluator_role(demo_warehouse, tmp_path, monkeypatch, capsys):
    from trivsel import cli, export, report, warehouse

    # 1. the evaluator's login fails (a wrong password): refuse, naming the role and the fix
    bad = re.sub(r"://([^:]+):[^@]+@", r"://\1:wrong-password@", warehouse.role_url("evaluator"))
    monkeypatch.setenv("TRIVSEL_EVALUATOR_URL", bad)
    with pytest.raises(warehouse.RoleUnavailable, match="evaluator"):
        report.write_report(tmp_path / "r.html")
    assert cli.main(["report", "--out", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert "refused" in err and "evaluator" in err and "trivsel roles apply" in err
    assert "wrong-password" not in err
    assert not (tmp_path / "r.html").exists()
    assert cli.main(["export", "--out", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists() or not list((tmp_path / "x").iterdir())
    monkeypatch.delenv("TRIVSEL_EVALUATOR_URL")

    # 2. a login that is not a member of evaluator cannot take the role: refused, not run with its own grants
    probe, pw = "stage_roles_probe", "probe-password-0123456789abcdef0123"
    demo_warehouse.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(probe)))
    demo_warehouse.execute(sql.SQL("create role {} login password {}").format(sql.Identifier(probe),
                                                                              sql.Literal(pw)))
    try:
        demo_warehouse.execute(sql.SQL("grant bi_reader to {}").format(sql.Identifier(probe)))
        url = re.sub(r"://[^@]+@", f"://{probe}:{pw}@", warehouse.url())
        with pytest.raises(warehouse.RoleUnavailable, match="cannot take the warehouse role 'evaluator'"):
            report.write_report(tmp_path / "r2.html", url=url)
        with pytest.raises(warehouse.RoleUnavailable, match="evaluator"):
            export.export(tmp_path / "x2", url=url)
        # 3. the superuser's own login takes the role and then reads as evaluator, nothing more
        with psycopg.connect(warehouse.url(), autocommit=True) as conn:
            warehouse.take_role(conn, "evaluator")
            assert conn.execute("select current_user").fetchone()[0] == "evaluator"
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("select 1 from marts.survey_response_rate limit 1")
    finally:
        demo_warehouse.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(probe)))


def test_the_build_lease_is_the_loaders_and_readable_by_the_transformer(demo_warehouse):
    """audit.build_lease (trivsel.build_lease): the demo run took and released it as loader; transformer reads
    it but cannot take it; the readers see nothing of it."""
    from trivsel import warehouse

    history = demo_warehouse.execute("select count(*) as n, count(released_at) as released"
                                     " from audit.build_lease_history").fetchone()
    assert history["n"] >= 1 and history["released"] == history["n"], history
    for table in ("build_lease", "build_lease_history"):
        assert demo_warehouse.execute("select pg_get_userbyid(relowner) as owner from pg_class"
                                      " where oid = %s::regclass", (f"audit.{table}",)).fetchone()["owner"] == "loader"
    with warehouse.connect(warehouse.LOADER, autocommit=True) as conn:
        conn.execute("update audit.build_lease set expires_at = expires_at where lease")
    with warehouse.connect(warehouse.TRANSFORMER, autocommit=True) as conn:
        assert conn.execute("select holder_run_id from audit.build_lease").fetchone() == (None,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("update audit.build_lease set holder_run_id = 'x' where lease")
    with warehouse.connect(warehouse.EVALUATOR, autocommit=True) as conn, \
            pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("select * from audit.build_lease")
