"""Superset on the session's demo warehouse, for real: installed (cached .venv-bi), started, provisioned,
each dashboard opened in headless Chromium, one chart's data read over the API as a municipality login and
as bi_reader and compared with the same query in PostgreSQL as those roles."""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
import requests
from throwaway_db import free_port

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("TRIVSEL_TEST_ARTIFACTS", ROOT / "tests" / "artifacts"))
CODE = "461"
pytestmark = [pytest.mark.e2e, pytest.mark.bi]


@pytest.fixture(scope="session")
def superset_server(warehouse_url, request):
    """Superset's venv (cached), metadata migration and server, booted in a thread while the session's demo
    run builds the marts (session scope, so pytest sets it up before demo_run): the migration needs only the
    warehouse server."""
    from trivsel.bi import server

    before = os.environ.get("TRIVSEL_BI_PORT")
    os.environ["TRIVSEL_BI_PORT"] = os.environ.get("TRIVSEL_TEST_BI_PORT") or str(free_port())
    failure: list[BaseException] = []

    early = getattr(request.config, "trivsel_bi_venv", None)  # tests/conftest.py: started at collection

    def boot() -> None:
        try:
            if early is not None:
                early.join()
            server.ensure_venv()
            server.ensure_metadata()
            server.start()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread below
            failure.append(exc)

    def ready() -> None:
        thread.join()
        if failure:
            raise failure[0]

    thread = threading.Thread(target=boot, daemon=True)
    thread.start()
    try:
        yield ready
    finally:
        thread.join()
        server.stop()
        if before is None:
            os.environ.pop("TRIVSEL_BI_PORT", None)
        else:
            os.environ["TRIVSEL_BI_PORT"] = before


@pytest.fixture(scope="module")
def superset(superset_server, demo_run):
    """Superset on the session's demo warehouse, provisioned once: {connection: its ids}."""
    from trivsel.bi import provision

    superset_server()  # the boot thread's outcome
    return provision.provision()


def _rows(url: str, sql: str) -> list[dict]:
    from psycopg.rows import dict_row

    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(sql).fetchall()


def _chart_id(api, name: str) -> int:
    found = [c["id"] for c in api.list("chart", ("id", "slice_name")) if c["slice_name"] == name]
    assert len(found) == 1, f"expected one chart {name!r}, found {found}"
    return found[0]


def _chart_data(api, chart_id: int) -> list[dict]:
    body = api.get(f"/api/v1/chart/{chart_id}/data/", format="json")
    return body["result"][0]["data"]


def _value(v):
    """JSON (Superset) and PostgreSQL agree on values, not on types: numbers compare as numbers."""
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, int | float | Decimal):
        return float(v)
    return str(v)


def _norm(rows: list[dict], columns: tuple[str, ...]) -> list[tuple]:
    return [tuple(_value(r[c]) for c in columns) for r in rows]


@pytest.mark.e2e
def test_provisioning_is_idempotent_and_covers_every_connection(superset):
    from trivsel.bi import dashboards, provision

    conns = provision.connections()
    assert set(superset) == {c.database_name for c in conns}
    api = provision.client()
    before = {r: len(api.list(r, ("id",))) for r in ("database", "dataset", "chart", "dashboard")}
    again = provision.provision()
    after = {r: len(api.list(r, ("id",))) for r in ("database", "dataset", "chart", "dashboard")}
    assert again == superset and after == before
    assert before["database"] == len(conns)
    assert before["dashboard"] == len(conns) * len(dashboards.DASHBOARDS)


@pytest.mark.e2e
def test_datasets_are_every_readable_table_with_dbt_descriptions(superset, demo_warehouse):
    from trivsel.bi import catalog, provision

    api = provision.client()
    datasets = api.list("dataset", ("id", "table_name", "schema", "database.database_name"))
    by_db: dict[str, set[tuple[str, str]]] = {}
    for d in datasets:
        by_db.setdefault(d["database"]["database_name"], set()).add((d["schema"], d["table_name"]))
    bi = by_db["trivsel_bi_reader"]
    marts = {r["table_name"] for r in demo_warehouse.execute(
        "select table_name from information_schema.tables where table_schema = 'marts'")}
    assert {t for s, t in bi if s == "marts"} == marts  # every public mart (the person tables are in `person`)
    assert ("reporting", "survey_item_change") in bi and ("reporting", "absence_change") in bi
    assert not any(s == "person" for s, _ in set().union(*by_db.values()))
    municipal = by_db[f"trivsel_municipality_{CODE}"]
    assert municipal and all(s == "marts" for s, _ in municipal)  # reporting is closed to municipality roles
    docs = catalog.docs()[("marts", "incident_episode_year")]
    ds = next(d for d in datasets if d["database"]["database_name"] == "trivsel_bi_reader"
              and (d["schema"], d["table_name"]) == ("marts", "incident_episode_year"))
    cols = {c["column_name"]: c for c in api.get(f"/api/v1/dataset/{ds['id']}")["result"]["columns"]}
    assert cols["status"]["description"] == docs.columns["status"] and docs.columns["status"]
    assert "not_delivered" in cols["episodes_shown"]["expression"]


@pytest.mark.e2e
def test_chart_data_is_what_each_role_reads_in_postgres(superset):
    """The incident chart's data over the API, as kommune_461 and as bi, equals PostgreSQL as their logins."""
    from trivsel.bi import dashboards, logins, provision

    chart = next(c for b in dashboards.DASHBOARDS for c in b.charts if c.key == "incident_episode_year")
    conns = {c.superset_user: c for c in provision.connections()}
    expr = dashboards.CALCULATED[("marts", "incident_episode_year")]["episodes_shown"][0]
    cols = tuple(chart.columns)
    select = ", ".join(f"({expr}) as episodes_shown" if c == "episodes_shown" else c for c in cols)
    order = ", ".join(f"{c} {'asc' if asc else 'desc'}" for c, asc in chart.order_by)
    sql = f"select {select} from marts.incident_episode_year order by {order} limit 10000"
    seen = {}
    for user in (f"kommune_{CODE}", "bi"):
        conn = conns[user]
        api = provision.client(user)
        got = _chart_data(api, _chart_id(api, f"{chart.title} — {conn.label}"))
        expected = _rows(logins.login_url(conn.login), sql)
        assert got, f"{user}: the chart returned no rows"
        assert sorted(_norm(got, cols), key=repr) == sorted(_norm(expected, cols), key=repr)
        assert [r["municipality_code"] for r in got] == [r["municipality_code"] for r in expected]
        seen[user] = {r["municipality_code"] for r in got}
    assert seen[f"kommune_{CODE}"] == {CODE}  # the role's row-level security, not a Superset filter
    assert len(seen["bi"]) > 1 and CODE in seen["bi"]
    # not delivered is shown as such, never as 0
    bi_rows = _rows(logins.login_url(logins.BI_LOGIN), sql)
    for r in bi_rows:
        if r["status"] == "not_delivered":
            assert r["episodes_shown"] == "ikke leveret (not delivered)"
    # the chart's dataset has no Superset row-level filter: the municipality's rows come from PostgreSQL
    admin = provision.client()
    assert admin.get("/api/v1/rowlevelsecurity/", q="(page:0,page_size:100)")["count"] == 0
    # a municipality login cannot read another connection's chart
    api = provision.client(f"kommune_{CODE}")
    bi_chart = _chart_id(provision.client(), f"{chart.title} — {conns['bi'].label}")
    r = api.http.get(f"{api.base}/api/v1/chart/{bi_chart}/data/", params={"format": "json"}, timeout=60)
    assert r.status_code in (403, 404), r.status_code


@pytest.mark.e2e
def test_bi_logins_read_no_person_level_table(superset):
    from trivsel.bi import logins

    for login in logins.logins():
        with psycopg.connect(logins.login_url(login)) as conn:
            for table in ("person.fct_absence_employee_month", "person.fct_survey_answer"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(f"select 1 from {table} limit 1")
                conn.rollback()
    with psycopg.connect(logins.login_url(logins.municipality_login(CODE))) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select 1 from reporting.survey_item_change limit 1")


def _session_cookie(base: str, username: str, password: str) -> str:
    """Log in through Superset's own login form (CSRF token from the form) and return the session cookie."""
    s = requests.Session()
    s.trust_env = False
    page = s.get(f"{base}/login/", timeout=60)
    token = re.search(r'csrf_token"[^>]*value="([^"]+)"', page.text) or \
        re.search(r'value="([^"]+)"[^>]*csrf_token', page.text)
    assert token, "no CSRF token on Superset's login page"
    r = s.post(f"{base}/login/", data={"username": username, "password": password, "csrf_token": token.group(1)},
               timeout=60, allow_redirects=False)
    assert r.status_code in (302, 303), f"login form: HTTP {r.status_code}"
    cookie = s.cookies.get("session")
    assert cookie, "no session cookie after login"
    return cookie


# What the page shows: how many chart holders, how many drawn (a table or a pivot table in them), how many in
# an error state, whether anything still loads. Returns null until `expected` charts are drawn or failed.
PROBE = r"""(() => {
  const holders = [...document.querySelectorAll('[data-test="dashboard-component-chart-holder"]')];
  // drawn: a table, a pivot table, or Superset's "No results" state (a municipality with no rows of a table)
  const drawn = holders.filter(h => h.querySelector('table, canvas, .pvtTable')
    || /No results were returned/i.test(h.innerText));
  const errors = holders.filter(h => h.querySelector('[data-test="error-tooltip"], .alert-danger, .ant-alert-error')
    || /Unexpected error|permission denied|does not exist/i.test(h.innerText));
  const loading = document.querySelectorAll('[aria-label="Loading"], .loading').length;
  const s = {holders: holders.length, drawn: drawn.length, errors: errors.length, loading,
             errorText: errors.map(e => e.innerText.slice(0, 300))};
  s.page = location.pathname;
  // only the dashboard asked for, fully loaded (never the previous page's DOM while the next one loads)
  const here = location.pathname.includes('/SLUG/') && document.readyState === 'complete';
  return (FINAL || (here && s.drawn + s.errors >= EXPECTED && !s.loading)) ? s : null;
})()"""


def probe(slug: str, expected: int, final: bool = False) -> str:
    return PROBE.replace("EXPECTED", str(expected)).replace("FINAL", "true" if final else "false") \
        .replace("SLUG", slug)


@pytest.mark.e2e
def test_every_dashboard_renders_in_chromium(superset, tmp_path):
    from superset_browser import Browser

    from trivsel.bi import dashboards, provision, server

    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    assert exe, "chromium is not installed (make test-deps installs it)"
    base = server.base_url()
    conns = {c.database_name: c for c in provision.connections()}
    shots = tmp_path / "screenshots"
    shots.mkdir()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    results = {}
    for database, entry in superset.items():
        conn = conns[database]
        browser = Browser(exe)
        try:
            cookie = _session_cookie(base, conn.superset_user, provision.user_password(conn.superset_user))
            browser.call("Network.setCookie", name="session", value=cookie, domain="127.0.0.1", path="/")
            for slug, _ in entry["dashboards"].items():
                domain = slug.split("-")[1]
                board = next(b for b in dashboards.DASHBOARDS if b.domain == domain)
                expected = sum(1 for c in board.charts if database == "trivsel_bi_reader" or c.schema == "marts")
                browser.navigate("about:blank")
                browser.wait_for("location.href === 'about:blank'", timeout=30)
                browser.navigate(f"{base}/superset/dashboard/{slug}/?standalone=1")
                state = browser.wait_for(probe(slug, expected), timeout=120) or \
                    browser.evaluate(probe(slug, expected, True))
                shot = browser.screenshot(shots / f"{slug}.png")
                after = browser.evaluate(probe(slug, expected, True))  # what the screenshot shows
                assert after["drawn"] == expected, f"{slug} after the screenshot: {json.dumps(after)}"
                shutil.copy(shot, ARTIFACTS / f"superset-{slug}.png")
                results[slug] = state
                if slug == f"trivsel-absence-kommune-{CODE}":  # no sick leave from 461: said so, not blank
                    assert "not_delivered" in browser.evaluate("document.body.innerText"), slug
                assert shot.stat().st_size > 10_000, f"{slug}: empty screenshot"
                assert state["page"] == f"/superset/dashboard/{slug}/", f"{slug}: {json.dumps(state)}"
                assert state["holders"] == expected, f"{slug}: {json.dumps(state)}"
                assert state["errors"] == 0, f"{slug}: charts in error: {state['errorText']}"
                assert state["drawn"] == expected, f"{slug}: {json.dumps(state)}"
        finally:
            browser.close()
    assert len(results) == len(superset) * len(dashboards.DASHBOARDS)


@pytest.mark.e2e
def test_bi_down_stops_superset_with_all_its_children(superset):
    """`make bi-down`: the gunicorn master and its workers are gone, the port is free (runs last)."""
    import psutil

    from trivsel.bi import server

    pid = server.pid()
    assert pid is not None and server.healthy()
    group = [p for p in psutil.process_iter(["pid"]) if _pgid(p.info["pid"]) == pid]
    assert len(group) >= 2, "gunicorn's master and at least one worker"
    assert server.stop() is True
    assert not [p for p in group if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert server.pid() is None and not server.healthy(timeout=2)


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None
