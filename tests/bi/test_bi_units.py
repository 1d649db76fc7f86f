"""trivsel.bi without a server: the dashboards' specification against the dbt docs, the generated secrets,
the BI logins' groups, the cached venv. Cheap: no Superset, no warehouse."""

from __future__ import annotations

import json
import stat


def test_every_chart_reads_documented_columns_of_a_reader_table():
    """A chart names only columns the dbt YAML documents for its table (or the dataset's calculated ones):
    a renamed model column fails here, not as a broken chart in the browser."""
    from trivsel.bi import catalog, dashboards

    docs = catalog.docs()
    for board in dashboards.DASHBOARDS:
        for chart in board.charts:
            assert chart.schema in catalog.BI_SCHEMAS, chart.key
            doc = docs.get((chart.schema, chart.table))
            assert doc, f"{chart.key}: {chart.schema}.{chart.table} is not a documented dbt relation"
            known = set(doc.columns) | set(dashboards.CALCULATED.get((chart.schema, chart.table), {}))
            used = {*chart.columns, *chart.pivot_rows, *chart.pivot_columns, *(c for c, _ in chart.order_by)}
            assert used - {"round_order"} <= known, f"{chart.key}: undocumented {sorted(used - known)}"


def test_query_context_runs_what_the_chart_shows():
    from trivsel.bi import dashboards

    for board in dashboards.DASHBOARDS:
        for chart in board.charts:
            qc = dashboards.query_context(chart, 7)
            fd = dashboards.form_data(chart, 7)
            assert qc["datasource"] == {"id": 7, "type": "table"} and fd["datasource"] == "7__table"
            query = qc["queries"][0]
            assert query["extras"]["where"] == chart.where
            if chart.is_pivot:
                assert query["columns"] == [*chart.pivot_rows, *chart.pivot_columns] and query["metrics"]
            else:
                assert query["columns"] == list(chart.columns) == fd["all_columns"]


def test_layout_places_every_chart_once():
    from trivsel.bi import dashboards

    layout = dashboards.position("t", [(3, "a"), (9, "b")])
    cells = [v for v in layout.values() if isinstance(v, dict) and v.get("type") == "CHART"]
    assert sorted(c["meta"]["chartId"] for c in cells) == [3, 9]
    assert all(layout[c["parents"][-1]]["children"] == [c["id"]] for c in cells)
    assert layout["GRID_ID"]["children"] == ["ROW-0", "ROW-1"]


def test_not_delivered_is_text_never_zero():
    from trivsel.bi import dashboards

    expr, _ = dashboards.CALCULATED[("marts", "incident_episode_year")]["episodes_shown"]
    assert "'not_delivered' then 'ikke leveret (not delivered)'" in expr.replace("status = ", "")
    assert "coalesce" not in expr.lower()


def test_secrets_are_generated_once_private_and_overridable(tmp_path, monkeypatch):
    from trivsel.bi import credentials

    monkeypatch.setenv("TRIVSEL_HOME", str(tmp_path))
    monkeypatch.delenv("TRIVSEL_BI_SUPERSET_ADMIN", raising=False)
    first = credentials.secret("superset_admin")
    path = credentials.secret_file("superset_admin")
    assert path.is_relative_to(tmp_path) and len(first) >= 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert credentials.secret("superset_admin") == first
    assert credentials.secret("warehouse_bi_superset") != first
    monkeypatch.setenv("TRIVSEL_BI_SUPERSET_ADMIN", "given-by-the-deployment")
    assert credentials.secret("superset_admin") == "given-by-the-deployment"


def test_each_bi_login_is_in_exactly_one_reader_group():
    from trivsel.bi import logins
    from trivsel.config import load_config

    groups = logins.logins()
    assert groups[logins.BI_LOGIN] == "bi_reader"
    codes = load_config().codes
    assert {logins.municipality_login(c): f"municipality_{c}" for c in codes}.items() <= groups.items()
    assert len(groups) == len(codes) + 1
    assert not {"loader", "transformer", "publisher"} & set(groups.values())


def test_venv_is_not_reinstalled_while_its_stamp_matches_the_lock(tmp_path, monkeypatch):
    from trivsel.bi import server

    monkeypatch.setenv("TRIVSEL_BI_VENV", str(tmp_path / "venv"))
    (tmp_path / "venv").mkdir()
    (tmp_path / "venv" / ".installed").write_text(server._lock_hash() + "\n")
    calls: list = []
    monkeypatch.setattr(server.subprocess, "run", lambda *a, **k: calls.append(a))
    assert server.ensure_venv() is False and calls == []
    (tmp_path / "venv" / ".installed").write_text("stale\n")
    assert server.ensure_venv() is True, "a stale stamp must reinstall from the lock"
    assert json.dumps(calls[-1][0]).count("requirements-bi.lock") == 1
    assert (tmp_path / "venv" / ".installed").read_text().strip() == server._lock_hash()
