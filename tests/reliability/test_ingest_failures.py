"""How the DAG's ingest callable (trivsel.pipeline.ingest) fails (issue 14): a quarantined delivery is a
deterministic data error, so the task fails at once without Airflow's retries (AirflowFailException, which the
task SDK's runner turns into FAILED without a retry) and its log names the reasons; an infrastructure error
(a lost connection) is raised as it is, so the task keeps its retries (TRIVSEL_TASK_RETRIES)."""

from __future__ import annotations

import logging

import psycopg
import pytest
from airflow.sdk.exceptions import AirflowFailException

from trivsel import loading, pipeline

PERIOD = "2014-01"


def test_a_quarantine_fails_without_retry_and_logs_its_reasons(wh, caplog):
    wh.put(f"169/hr_absence/{PERIOD}/fravaer_{PERIOD}.csv", b"Navn;Timer\nx;1\n")
    with caplog.at_level(logging.ERROR, logger="trivsel.pipeline"):
        with pytest.raises(AirflowFailException) as raised:
            pipeline.ingest("169", PERIOD, "run-1")
    assert isinstance(raised.value, pipeline.DeliveriesQuarantined)
    reason = wh.conn.execute("select reason from audit.delivery where status = 'quarantined'").fetchone()[0]
    assert reason and f"fravaer_{PERIOD}.csv" in reason
    assert reason in str(raised.value), "the exception (the task log's last words) carries the reason"
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(reason in m for m in logged), logged


def test_a_retry_of_a_quarantined_delivery_still_fails_without_retry(wh):
    wh.put(f"169/hr_absence/{PERIOD}/fravaer_{PERIOD}.csv", b"Navn;Timer\nx;1\n")
    with pytest.raises(AirflowFailException):
        pipeline.ingest("169", PERIOD, "run-1")
    with pytest.raises(AirflowFailException, match="already quarantined"):
        pipeline.ingest("169", PERIOD, "run-1")  # a re-run finds it 'unchanged', still quarantined


def test_a_lost_connection_is_an_ordinary_error_and_keeps_its_retries(monkeypatch):
    def lost(*_a, **_k):
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(loading, "ingest_municipality", lost)
    with pytest.raises(psycopg.OperationalError) as raised:
        pipeline.ingest("169", PERIOD, "run-1")
    assert not isinstance(raised.value, AirflowFailException)
