"""The pull step against real servers: OpenSSH's sshd and an HTTPS listing server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import date

import pytest

from trivsel.remote.base import RemoteError, period_of
from trivsel.remote.pull import RemotePullFailed, pull_municipality

from .conftest import (
    HTTP_CONN,
    HTTP_TOKEN,
    SFTP_CONN,
    config_with,
    drop_files,
    https_connection,
    sftp_connection,
)

SOURCES = {"169": ("survey", "hr_absence", "incidents", "use_of_force"),
           "461": ("survey", "incidents", "use_of_force"),
           "607": ("survey", "hr_absence", "incidents")}


def _periods(drop) -> list[str]:
    return sorted({p.name for p in drop.glob("*/*/*") if p.is_dir()})


def _sftp_locations(sshd, drop, codes=SOURCES) -> dict:
    return {(code, source): {"location": f"sftp://127.0.0.1:{sshd['port']}{drop}/{code}/{source}",
                             "conn_id": SFTP_CONN}
            for code in codes for source in SOURCES[code]}


def _https_locations(https, codes=SOURCES) -> dict:
    return {(code, source): {"location": f"https://127.0.0.1:{https['port']}/listing/{code}/{source}.json",
                             "conn_id": HTTP_CONN}
            for code in codes for source in SOURCES[code]}


def _pull_all(config, drop, **kw) -> list:
    return [pull_municipality(code, period, run_id="test", config=config, **kw)
            for period in _periods(drop) for code in SOURCES]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------------------ same files as the inbox


def test_sftp_pull_gives_the_local_inbox_and_a_second_pull_fetches_nothing(pull_env, sshd, drop, monkeypatch):
    monkeypatch.setenv(f"AIRFLOW_CONN_{SFTP_CONN.upper()}", sftp_connection(sshd))
    config, _ = config_with(_sftp_locations(sshd, drop))
    reports = _pull_all(config, drop)
    pulled = drop_files(pull_env["inbox"])
    assert {k: _sha(v) for k, v in pulled.items()} == {k: _sha(v) for k, v in drop_files(drop).items()}
    assert sum(len(r.pulled) for r in reports) == len(pulled) == 42
    assert not list(pull_env["inbox"].rglob(".partial-*"))

    again = _pull_all(config, drop)
    assert sum(len(r.pulled) + len(r.unchanged) for r in again) == 0
    assert sum(r.skipped for r in again) == 42


def test_https_pull_gives_the_local_inbox_and_a_second_pull_fetches_nothing(pull_env, https, drop, monkeypatch,
                                                                            caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv(f"AIRFLOW_CONN_{HTTP_CONN.upper()}", https_connection(https))
    config, _ = config_with(_https_locations(https))
    reports = _pull_all(config, drop)
    pulled = drop_files(pull_env["inbox"])
    assert {k: _sha(v) for k, v in pulled.items()} == {k: _sha(v) for k, v in drop_files(drop).items()}
    assert sum(len(r.pulled) for r in reports) == 42
    n_requests = len(https["state"].requests)

    again = _pull_all(config, drop)
    assert sum(len(r.pulled) + len(r.unchanged) for r in again) == 0
    # the second pull only listed: no file was downloaded again
    assert all(path.startswith("/listing/") for path, _ in https["state"].requests[n_requests:])
    assert HTTP_TOKEN not in caplog.text


def test_a_changed_time_stamp_downloads_but_does_not_redeliver(pull_env, sshd, drop, served, monkeypatch):
    """Same name, same size, newer mtime: downloaded and checksummed, but the inbox is left as it is."""
    import os
    import shutil

    mine = served / "mine"
    shutil.copytree(drop / "169" / "hr_absence", mine)
    monkeypatch.setenv(f"AIRFLOW_CONN_{SFTP_CONN.upper()}", sftp_connection(sshd))
    config, _ = config_with({("169", "hr_absence"): {"location": f"sftp://127.0.0.1:{sshd['port']}{mine}",
                                                      "conn_id": SFTP_CONN}})
    first = pull_municipality("169", "2014-01", config=config)
    assert first.pulled == ["hr_absence/2014-01/fravaer_2014-01.csv"]
    f = mine / "2014-01" / "fravaer_2014-01.csv"
    os.utime(f, (f.stat().st_atime, f.stat().st_mtime + 3600))
    second = pull_municipality("169", "2014-01", config=config)
    assert second.pulled == [] and second.unchanged == ["hr_absence/2014-01/fravaer_2014-01.csv"]
    third = pull_municipality("169", "2014-01", config=config)
    assert third.skipped == 1 and not third.unchanged


# ------------------------------------------------------------------------------ interrupted transfers


def _one_https_file(https):
    config, _ = config_with({("169", "hr_absence"): {
        "location": f"https://127.0.0.1:{https['port']}/listing/169/hr_absence.json", "conn_id": HTTP_CONN}})
    return config, "/files/169/hr_absence/2014-01/fravaer_2014-01.csv"


def test_an_interrupted_download_is_resumed(pull_env, https, drop, monkeypatch):
    monkeypatch.setenv(f"AIRFLOW_CONN_{HTTP_CONN.upper()}", https_connection(https))
    monkeypatch.setattr("trivsel.remote.https.CHUNK", 256)  # the sample files are small: keep what came
    config, url = _one_https_file(https)
    https["state"].fail[url] = ["truncate"]
    report = pull_municipality("169", "2014-01", config=config, delay=0.01)
    assert report.pulled == ["hr_absence/2014-01/fravaer_2014-01.csv"]
    got = (pull_env["inbox"] / "169/hr_absence/2014-01/fravaer_2014-01.csv").read_bytes()
    assert got == (drop / "169/hr_absence/2014-01/fravaer_2014-01.csv").read_bytes()
    ranges = [r for p, r in https["state"].requests if p == url]
    assert ranges[0] is None and ranges[1] is not None and ranges[1].startswith("bytes=")
    assert int(ranges[1][6:-1]) > 0  # resumed where the first attempt stopped, not from the start


def test_an_interrupted_download_is_never_half_archived(pull_env, https, drop, monkeypatch):
    from trivsel import loading

    monkeypatch.setenv(f"AIRFLOW_CONN_{HTTP_CONN.upper()}", https_connection(https))
    config, url = _one_https_file(https)
    https["state"].fail[url] = ["truncate", "truncate"]
    with pytest.raises(RemotePullFailed, match="municipality 169 .*hr_absence.*gave up after 2 attempts"):
        pull_municipality("169", "2014-01", config=config, attempts=2, delay=0.01)
    folder = pull_env["inbox"] / "169/hr_absence/2014-01"
    assert [p.name for p in folder.iterdir()] == [next(folder.glob(".partial-*")).name]
    # the rails do not see the partial file: nothing is archived, nothing registered
    outcomes = loading.ingest_municipality("169", "2014-01", "test", config=config)
    assert outcomes == []
    assert not pull_env["archive"].exists() or not any(pull_env["archive"].rglob("*.csv"))

    # the next run resumes and completes it; then it loads like a dropped file
    report = pull_municipality("169", "2014-01", config=config, delay=0.01)
    assert report.pulled == ["hr_absence/2014-01/fravaer_2014-01.csv"]
    assert not list(folder.glob(".partial-*"))
    original = (drop / "169/hr_absence/2014-01/fravaer_2014-01.csv").read_bytes()
    [outcome] = loading.ingest_municipality("169", "2014-01", "test", config=config)
    assert outcome.status == "loaded"
    [archived] = list(pull_env["archive"].rglob("*fravaer_2014-01.csv"))
    assert archived.read_bytes() == original


def test_500_and_timeouts_are_retried_with_backoff(pull_env, https, drop, monkeypatch, caplog):
    monkeypatch.setenv(f"AIRFLOW_CONN_{HTTP_CONN.upper()}", https_connection(https))
    config, url = _one_https_file(https)
    https["state"].fail["/listing/169/hr_absence.json"] = ["500", "timeout"]
    https["state"].fail[url] = ["500"]
    https["state"].hang = 2.0
    report = pull_municipality("169", "2014-01", config=config, delay=0.01, timeout=0.5)
    assert report.pulled == ["hr_absence/2014-01/fravaer_2014-01.csv"]
    assert "HTTP 500; attempt 1 of 4, retrying" in caplog.text
    assert "no answer within" in caplog.text


# ------------------------------------------------------------------------------ clear errors


def _error(code, source, location, conn_id, **kw) -> str:
    config, _ = config_with({(code, source): {"location": location, "conn_id": conn_id}})
    with pytest.raises(RemotePullFailed) as exc:
        pull_municipality(code, "2014-01", config=config, delay=0.01, attempts=2, **kw)
    return str(exc.value)


def test_refused_connection_names_municipality_and_location(pull_env, monkeypatch, sshd, https):
    from throwaway_db import free_port

    monkeypatch.setenv(f"AIRFLOW_CONN_{SFTP_CONN.upper()}", sftp_connection(sshd))
    monkeypatch.setenv(f"AIRFLOW_CONN_{HTTP_CONN.upper()}", https_connection(https))
    port = free_port()
    msg = _error("169", "hr_absence", f"sftp://127.0.0.1:{port}/drop", SFTP_CONN)
    assert f"municipality 169 (Høje-Taastrup), hr_absence: sftp://127.0.0.1:{port}/drop: connection refused" in msg
    msg = _error("607", "hr_absence", f"https://127.0.0.1:{port}/listing.json?token=abc", HTTP_CONN)
    assert f"municipality 607 (Fredericia), hr_absence: https://127.0.0.1:{port}/listing.json: connection refused" in msg
    assert "token=abc" not in msg


def test_wrong_credentials_are_named_without_the_secret(pull_env, monkeypatch, sshd, https, drop, caplog):
    monkeypatch.setenv(f"AIRFLOW_CONN_{SFTP_CONN.upper()}", sftp_connection(sshd, key=sshd["other_key"]))
    msg = _error("169", "hr_absence", f"sftp://127.0.0.1:{sshd['port']}{drop}/169/hr_absence", SFTP_CONN)
    assert "municipality 169" in msg and f"sftp://127.0.0.1:{sshd['port']}" in msg
    assert f"authentication failed: the server refused the credentials of Airflow connection '{SFTP_CONN}'" in msg

    wrong = "wrong-token-also-a-secret"
    monkeypatch.setenv(f"AIRFLOW_CONN_{HTTP_CONN.upper()}", https_connection(https, token=wrong))
    msg = _error("169", "hr_absence", f"https://127.0.0.1:{https['port']}/listing/169/hr_absence.json", HTTP_CONN)
    assert f"the server refused the credentials of Airflow connection '{HTTP_CONN}' (HTTP 401)" in msg
    assert wrong not in msg and wrong not in caplog.text


def test_an_untrusted_host_key_or_certificate_is_refused(pull_env, monkeypatch, sshd, https, drop):
    other = " ".join((sshd["dir"] / "other_key.pub").read_text().split()[:2])
    monkeypatch.setenv(f"AIRFLOW_CONN_{SFTP_CONN.upper()}", sftp_connection(sshd, host_key=other))
    msg = _error("169", "hr_absence", f"sftp://127.0.0.1:{sshd['port']}{drop}/169/hr_absence", SFTP_CONN)
    assert "host key does not match" in msg
    # no CA given: the self-signed certificate is not trusted
    monkeypatch.setenv(f"AIRFLOW_CONN_{HTTP_CONN.upper()}",
                       '{"conn_type": "http", "extra": {"Authorization": "Bearer x"}}')
    msg = _error("169", "hr_absence", f"https://127.0.0.1:{https['port']}/listing/169/hr_absence.json", HTTP_CONN)
    assert "TLS verification failed" in msg


def test_a_missing_folder_is_named(pull_env, monkeypatch, sshd, https, drop):
    monkeypatch.setenv(f"AIRFLOW_CONN_{SFTP_CONN.upper()}", sftp_connection(sshd))
    msg = _error("169", "hr_absence", f"sftp://127.0.0.1:{sshd['port']}{drop}/169/no_such", SFTP_CONN)
    assert f"the folder {drop}/169/no_such does not exist on the server" in msg
    monkeypatch.setenv(f"AIRFLOW_CONN_{HTTP_CONN.upper()}", https_connection(https))
    msg = _error("169", "hr_absence", f"https://127.0.0.1:{https['port']}/listing/169/no_such.json", HTTP_CONN)
    assert "does not exist on the server (HTTP 404)" in msg and "municipality 169" in msg


def test_a_listing_that_lies_about_sizes_is_refused(pull_env, monkeypatch, https, drop):
    monkeypatch.setenv(f"AIRFLOW_CONN_{HTTP_CONN.upper()}", https_connection(https))
    config, url = _one_https_file(https)
    real = (drop / "169/hr_absence/2014-01/fravaer_2014-01.csv").stat().st_size
    https["state"].lie[url] = real - 10
    msg = _error("169", "hr_absence", f"https://127.0.0.1:{https['port']}/listing/169/hr_absence.json", HTTP_CONN)
    assert "municipality 169" in msg and "the listing lies about its size" in msg
    assert f"has {real - 10} bytes, the server sends {real}" in msg
    assert not list(pull_env["inbox"].rglob("fravaer_2014-01.csv"))


def test_a_missing_connection_is_named(pull_env, monkeypatch, sshd, drop):
    monkeypatch.delenv("AIRFLOW_CONN_TRIVSEL_NO_SUCH", raising=False)
    msg = _error("169", "hr_absence", f"sftp://127.0.0.1:{sshd['port']}{drop}/169/hr_absence", "trivsel_no_such")
    assert "Airflow connection 'trivsel_no_such'" in msg


# ------------------------------------------------------------------------------ deleting, overdue


def test_remote_files_are_deleted_only_when_configured(pull_env, monkeypatch, sshd, drop, served):
    import os
    import pwd
    import shutil

    from .conftest import SFTP_USER

    mine = served / "deletable"
    shutil.copytree(drop / "607" / "hr_absence", mine)
    uid = pwd.getpwnam(SFTP_USER).pw_uid
    for p in [mine, *mine.rglob("*")]:
        os.chown(p, uid, -1)
    monkeypatch.setenv(f"AIRFLOW_CONN_{SFTP_CONN.upper()}", sftp_connection(sshd))
    loc = f"sftp://127.0.0.1:{sshd['port']}{mine}"
    config, _ = config_with({("607", "hr_absence"): {"location": loc, "conn_id": SFTP_CONN}})
    pull_municipality("607", "2014-01", config=config)
    assert (mine / "2014-01" / "sygefravaer_2014-01.xlsx").exists()
    config, _ = config_with({("607", "hr_absence"): {"location": loc, "conn_id": SFTP_CONN,
                                                      "delete_after_pull": True}})
    report = pull_municipality("607", "2014-02", config=config)
    assert report.pulled == ["hr_absence/2014-02/sygefravaer_2014-02.xlsx"]
    assert not (mine / "2014-02" / "sygefravaer_2014-02.xlsx").exists()
    assert (pull_env["inbox"] / "607/hr_absence/2014-02/sygefravaer_2014-02.xlsx").exists()


def test_a_late_municipality_is_logged_as_overdue_and_does_not_fail(pull_env, monkeypatch, sshd, caplog, served):
    empty = served
    monkeypatch.setenv(f"AIRFLOW_CONN_{SFTP_CONN.upper()}", sftp_connection(sshd))
    config, _ = config_with({("169", "hr_absence"): {"location": f"sftp://127.0.0.1:{sshd['port']}{empty}",
                                                      "conn_id": SFTP_CONN, "due_day": 10}})
    early = pull_municipality("169", "2014-04", config=config, as_of=date(2014, 5, 10))
    assert early.overdue == [] and early.errors == []
    late = pull_municipality("169", "2014-04", config=config, as_of=date(2014, 5, 11))
    assert late.overdue == ["hr_absence"] and late.errors == []
    assert ("OVERDUE: municipality 169 (Høje-Taastrup) has not delivered hr_absence for 2014-04; "
            "it was due by 2014-05-10") in caplog.text


# ------------------------------------------------------------------------------ config and periods


@pytest.mark.parametrize("path, period", [
    ("2012-05/besvarelser_169_2012-05.csv", "2012-05"),
    ("fravaer_2014-01.csv", "2014-01"),
    ("2014-02_fravaer.csv", "2014-02"),
    ("2013-12/sygefravaer_aar_2010-2013.csv", "2013-12"),
    ("sygefravaer_aar_2010-2013.csv", None),
    ("fravaer.csv", None),
    ("x2014-01.csv", None),
])
def test_period_of_a_remote_file(path, period):
    assert period_of(path) == period


@pytest.mark.parametrize("extra, message", [
    ({"location": "sftp://user:pw@host/drop"}, "must not carry credentials"),
    ({"location": "ftp://host/drop"}, "is not one of"),
    ({"location": "sftp:///drop"}, "has no host"),
    ({"due_day": 31}, "due_day 31 must be a day of the month from 1 to 28"),
    ({"delete_after_pull": "yes"}, "delete_after_pull must be true or false"),
    ({"conn_id": "bad id!"}, "is not an Airflow connection id"),
])
def test_config_rejects_bad_remote_keys(extra, message):
    from trivsel.config import ConfigError

    with pytest.raises(ConfigError, match=message):
        config_with({("169", "hr_absence"): extra})


def test_config_keeps_remote_keys():
    config, _ = config_with({("169", "hr_absence"): {"location": "sftp://drop.example:2222/x", "conn_id": "c",
                                                      "due_day": 10}})
    src = config.municipality("169").sources["hr_absence"]
    assert (src.location, src.conn_id, src.due_day, src.delete_after_pull) == ("sftp://drop.example:2222/x", "c",
                                                                               10, False)
    assert config.municipality("461").sources["survey"].location is None


def test_remote_error_is_a_runtime_error():
    assert issubclass(RemoteError, RuntimeError)


# ------------------------------------------------------------------------------ s3 (moto's server)


def test_s3_pull_gives_the_local_inbox_and_a_second_pull_fetches_nothing(pull_env, s3_server, drop, monkeypatch,
                                                                         caplog):
    from .conftest import S3_BUCKET, S3_CONN, s3_connection

    monkeypatch.setenv(f"AIRFLOW_CONN_{S3_CONN.upper()}", s3_connection(s3_server))
    config, _ = config_with({(code, source): {"location": f"s3://{S3_BUCKET}/deliveries/{code}/{source}",
                                              "conn_id": S3_CONN}
                             for code in SOURCES for source in SOURCES[code]})
    reports = _pull_all(config, drop)
    pulled = drop_files(pull_env["inbox"])
    assert {k: _sha(v) for k, v in pulled.items()} == {k: _sha(v) for k, v in drop_files(drop).items()}
    assert sum(len(r.pulled) for r in reports) == 42
    again = _pull_all(config, drop)
    assert sum(len(r.pulled) + len(r.unchanged) for r in again) == 0 and sum(r.skipped for r in again) == 42
    assert "testing-secret" not in caplog.text


def test_s3_errors_are_named(pull_env, s3_server, monkeypatch):
    from throwaway_db import free_port

    from .conftest import S3_CONN, s3_connection

    monkeypatch.setenv(f"AIRFLOW_CONN_{S3_CONN.upper()}", s3_connection(s3_server))
    msg = _error("607", "hr_absence", "s3://no-such-bucket/deliveries", S3_CONN)
    assert "municipality 607 (Fredericia), hr_absence: s3://no-such-bucket/deliveries: the bucket no-such-bucket" \
           " does not exist" in msg
    monkeypatch.setenv(f"AIRFLOW_CONN_{S3_CONN.upper()}",
                       s3_connection(s3_server, endpoint=f"http://127.0.0.1:{free_port()}"))
    msg = _error("607", "hr_absence", "s3://kommune-drop/deliveries", S3_CONN)
    assert "s3://kommune-drop/deliveries: connection refused" in msg and "testing-secret" not in msg


def test_a_pull_waits_for_the_period_lock_of_the_loaders(pull_env, https, drop, monkeypatch):
    """The pull writes into the inbox's period folder only while no load of that municipality and period runs
    (loading.period_lock, the lock the DAG's ingest and `trivsel load` hold)."""
    import threading
    import time

    import psycopg

    from trivsel import loading, schema

    monkeypatch.setenv(f"AIRFLOW_CONN_{HTTP_CONN.upper()}", https_connection(https))
    config, _ = _one_https_file(https)
    target = pull_env["inbox"] / "169/hr_absence/2014-01/fravaer_2014-01.csv"
    with psycopg.connect(pull_env["url"], autocommit=True) as holder:
        schema.ensure(holder)
        with loading.period_lock(holder, "169", "2014-01"):
            reports: list = []
            t = threading.Thread(target=lambda: reports.append(
                pull_municipality("169", "2014-01", config=config, delay=0.01)))
            t.start()
            time.sleep(3)
            assert t.is_alive() and not target.exists(), "the pull wrote into the inbox under a load's lock"
        t.join(timeout=120)
    assert reports and reports[0].pulled == ["hr_absence/2014-01/fravaer_2014-01.csv"] and target.exists()


# ------------------------------------------------------------------------------ a remote that is down, in the DAG's task


def test_a_remote_that_is_down_is_tolerated_and_visible(pull_env, https, drop, monkeypatch, caplog, capfd):
    """The DAG's ingest task (pipeline.pull_and_ingest): 169's incidents location refuses the connection. The
    task does not fail and still loads 169's hr_absence file from the inbox; the failure is logged at ERROR,
    recorded in audit.pull_failure, and fails 169's verdict only, with the location in its reason. A later
    pull of the same run that works clears it."""
    import shutil

    import psycopg
    import yaml

    from trivsel import pipeline, verdict

    from .conftest import free_port

    monkeypatch.setenv(f"AIRFLOW_CONN_{HTTP_CONN.upper()}", https_connection(https))
    down = f"https://127.0.0.1:{free_port()}/listing/169/incidents.json"
    _, data = config_with({("169", "incidents"): {"location": down, "conn_id": HTTP_CONN}})
    cfg = pull_env["tmp"] / "municipalities.yml"
    cfg.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    monkeypatch.setenv("TRIVSEL_CONFIG", str(cfg))
    inbox = pull_env["inbox"] / "169/hr_absence/2014-01"
    inbox.mkdir(parents=True)
    shutil.copy(drop / "169/hr_absence/2014-01/fravaer_2014-01.csv", inbox)

    loaded = pipeline.pull_and_ingest("169", "2014-01", "run-down")
    assert [(d["file"], d["source"]) for d in loaded] == [("fravaer_2014-01.csv", "hr_absence")]
    assert loaded[0]["rows"] > 0 and loaded[0]["status"] != "quarantined"
    logged = caplog.text + capfd.readouterr().out  # the task log (Airflow's structlog writes to stdout here)
    assert re.search(r"(?i)error.*municipality 169, period 2014-01: pulling failed for 1 location.*\n.*incidents: "
                     r"https://127\.0\.0\.1:\d+/listing/169/incidents\.json: connection refused", logged), logged
    with psycopg.connect(pull_env["url"]) as conn:
        [(errors,)] = conn.execute("select errors from audit.pull_failure where run_id = 'run-down'"
                                   " and municipality_code = '169' and period = '2014-01'").fetchall()
    assert len(errors) == 1 and "incidents" in errors[0] and "connection refused" in errors[0]

    # the run's findings task gives 169 (only) a verdict instance, and that verdict fails with the location
    clean = {"169": [], "461": []}
    assert verdict.judged(["169", "461"], clean, {}, "run-down") == ["169"]
    assert verdict.judged(["169", "461"], clean, {}, "another-run") == []
    with pytest.raises(verdict.MunicipalityFailed, match=r"(?s)municipality 169: pulling failed for 1 remote"
                                                         r".*2014-01: .*incidents.*connection refused"):
        verdict.judge("169", {"169": []}, {}, "run-down")
    assert "pull succeeded" in verdict.judge("461", {"461": []}, {}, "run-down")
    assert "pull succeeded" in verdict.judge("169", {"169": []}, {}, "another-run")

    # the remote is back (here: the location removed): the same run's next pull clears the record
    cfg.write_text(yaml.safe_dump(config_with({})[1], allow_unicode=True, sort_keys=False))
    assert pipeline.pull("169", "2014-01", "run-down")["errors"] == []
    assert "pull succeeded" in verdict.judge("169", {"169": []}, {}, "run-down")
    assert verdict.judged(["169", "461"], clean, {}, "run-down") == []


def test_a_warehouse_error_in_the_pull_keeps_the_tasks_retries(monkeypatch):
    """psycopg.OperationalError is infrastructure: raised as it is (the ingest task retries), and nothing loads
    from a warehouse that is away."""
    import psycopg

    from trivsel import loading, pipeline

    def lost(*a, **k):
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr("trivsel.remote.pull.pull_municipality", lost)
    monkeypatch.setattr(loading, "ingest_municipality", lambda *a, **k: pytest.fail("loaded after a lost warehouse"))
    with pytest.raises(psycopg.OperationalError):
        pipeline.pull_and_ingest("169", "2014-01", "run-lost")
