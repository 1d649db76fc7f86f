"""Where a stage finds its login (warehouse.role_url), without a server: embedded, external, Airflow."""

from __future__ import annotations

import stat
from urllib.parse import urlsplit

import pytest

from trivsel import warehouse

EXTERNAL = "postgresql://admin:admin-pw@db.example:5439/warehouse"


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    monkeypatch.setenv("TRIVSEL_HOME", str(tmp_path))
    monkeypatch.delenv("WAREHOUSE_URL", raising=False)
    for role in warehouse.STAGE_ROLES:
        for env in (warehouse.ROLE_URL_ENV, warehouse.ROLE_PASSWORD_ENV, warehouse.ROLE_AIRFLOW_CONN_ENV):
            monkeypatch.delenv(env[role], raising=False)
    return monkeypatch


def test_embedded_role_logs_in_as_itself_with_its_generated_password(clean_env, tmp_path):
    with pytest.raises(warehouse.RoleUnavailable, match="trivsel roles apply"):
        warehouse.role_url("loader")  # no password yet: refuses, never falls back to the superuser
    (tmp_path / "pg").mkdir()
    (tmp_path / "pg" / "superuser.password").write_text("super-secret\n")
    pw = warehouse.role_password("loader", create=True)
    f = warehouse.role_password_file("loader")
    assert f == tmp_path / "pg" / "loader.password" and stat.S_IMODE(f.stat().st_mode) == 0o600
    assert len(pw) >= 32 and warehouse.role_password("loader", create=True) == pw  # generated once
    assert warehouse.role_password("transformer", create=True) != pw
    parts = urlsplit(warehouse.role_url("loader"))
    assert (parts.username, parts.password, parts.path) == ("loader", pw, "/warehouse")
    assert urlsplit(warehouse.url(warehouse.AIRFLOW_DB, role="loader")).path == "/airflow"
    assert warehouse.dbt_env("loader")["TRIVSEL_DBT_USER"] == "loader"
    assert pw not in warehouse.redact(f"connect {warehouse.role_url('loader')} failed")


def test_unknown_role_is_refused(clean_env):
    with pytest.raises(ValueError, match="unknown stage role"):
        warehouse.role_url("postgres")


def test_external_warehouse_takes_role_passwords_urls_and_airflow_connections(clean_env):
    clean_env.setenv("WAREHOUSE_URL", EXTERNAL)
    # nothing given: the single login of WAREHOUSE_URL (a stage is then not strict; the evaluator is)
    assert warehouse.role_url("loader") == EXTERNAL and not warehouse.has_role_login("loader")
    clean_env.setenv("TRIVSEL_LOADER_PASSWORD", "loader-pw")
    parts = urlsplit(warehouse.role_url("loader"))
    assert (parts.username, parts.password, parts.hostname, parts.port) == ("loader", "loader-pw", "db.example", 5439)
    assert warehouse.has_role_login("loader")
    clean_env.setenv("TRIVSEL_LOADER_URL", "postgresql://loader:x@other:5432/warehouse")
    assert urlsplit(warehouse.role_url("loader")).hostname == "other"
    # an Airflow connection that is WAREHOUSE_URL again is not a login of the role's own
    clean_env.setenv("AIRFLOW_CONN_TRIVSEL_TRANSFORMER", EXTERNAL)
    assert not warehouse.has_role_login("transformer")
    clean_env.setenv("AIRFLOW_CONN_TRIVSEL_TRANSFORMER", "postgres://transformer:t@db.example:5439/warehouse")
    assert warehouse.has_role_login("transformer")
    assert warehouse.dbt_env("transformer")["TRIVSEL_DBT_PASSWORD"] == "t"


def test_airflow_env_has_a_connection_per_stage_role(clean_env):
    from trivsel import airflow_env

    clean_env.setenv("WAREHOUSE_URL", EXTERNAL)
    for role in warehouse.STAGE_ROLES:
        clean_env.setenv(warehouse.ROLE_PASSWORD_ENV[role], f"{role}-pw")
    conns = airflow_env.stage_connections()
    assert set(conns) == {f"AIRFLOW_CONN_TRIVSEL_{r.upper()}" for r in warehouse.STAGE_ROLES}
    for role in warehouse.STAGE_ROLES:
        parts = urlsplit(conns[f"AIRFLOW_CONN_TRIVSEL_{role.upper()}"])
        assert (parts.username, parts.password) == (role, f"{role}-pw")
