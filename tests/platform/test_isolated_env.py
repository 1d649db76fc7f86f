"""throwaway_db.isolated_env: a subprocess with a home of its own inherits nothing that points at the
session's installation (the e2e tests that start a server of their own build their environment with it)."""

from __future__ import annotations

import pytest
import throwaway_db


def test_the_session_s_places_and_logins_are_dropped_and_the_rest_kept(monkeypatch):
    session = {"WAREHOUSE_URL": "postgresql://session", "TRIVSEL_INBOX": "/session/inbox",
               "TRIVSEL_ARCHIVE": "/session/archive", "AIRFLOW_HOME": "/session/airflow",
               "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor", "AIRFLOW_CONN_TRIVSEL_LOADER": "postgresql://x",
               "TRIVSEL_LOADER_URL": "postgresql://loader@session", "TRIVSEL_DBT_PASSWORD": "pw",
               "TRIVSEL_BULK_FROM_BYTES": "1"}
    kept = {"TRIVSEL_PSEUDONYM_KEY": "k", "PATH": "/usr/bin", "TRIVSEL_HOME": "/session/home"}
    for k, v in {**session, **kept}.items():
        monkeypatch.setenv(k, v)
    env = throwaway_db.isolated_env("TRIVSEL_BULK_FROM_BYTES", TRIVSEL_HOME="/own/home", TRIVSEL_PG_PORT="1")
    assert not set(session) & set(env), set(session) & set(env)
    assert env["TRIVSEL_PSEUDONYM_KEY"] == "k" and env["PATH"] == "/usr/bin"
    assert env["TRIVSEL_HOME"] == "/own/home" and env["TRIVSEL_PG_PORT"] == "1"


def test_run_python_returns_the_last_line_and_fails_with_stderr():
    env = throwaway_db.isolated_env()
    assert throwaway_db.run_python("print('a'); print('b')", env) == "b"
    with pytest.raises(AssertionError, match="went wrong"):
        throwaway_db.run_python("import sys; sys.exit('went wrong')", env)
