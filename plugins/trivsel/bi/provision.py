"""`trivsel bi provision`: Superset's connections, datasets and dashboards as code, over its REST API.

Idempotent: every object is found by its name (connection, schema + table, chart title, dashboard slug) and
updated in place, so a second run changes nothing but what the code or the warehouse changed.

    connection  trivsel_bi_reader            as bi_superset (member of bi_reader)
    connection  trivsel_municipality_<code>  as bi_superset_<code> (member of municipality_<code>)
    datasets    per connection, every marts/reporting table its login may read; descriptions from dbt
    dashboards  per connection, one per domain (trivsel.bi.dashboards)
    users       `bi` (role "trivsel BI": the bi_reader connection only) and `kommune_<code>` (role
                "Kommune <code>": that municipality's connection only); passwords generated

A municipality's Superset login can run queries only through its municipality's warehouse login, whose
row-level security returns that municipality's rows whatever the chart asks: no Superset filter is involved.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg

from trivsel import warehouse
from trivsel.bi import catalog, credentials, dashboards, logins, server
from trivsel.bi.api import Superset, dumps
from trivsel.config import load_config

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Connection:
    database_name: str
    login: str
    label: str
    superset_role: str
    superset_user: str
    slug_suffix: str


def connections() -> list[Connection]:
    config = load_config()
    out = [Connection("trivsel_bi_reader", logins.BI_LOGIN, "alle kommuner (bi_reader)", "trivsel BI", "bi", "bi")]
    for code in config.codes:
        name = config.municipality(code).name
        out.append(Connection(f"trivsel_municipality_{code}", logins.municipality_login(code),
                              f"{name} ({code})", f"Kommune {code}", f"kommune_{code}", f"kommune-{code}"))
    return out


def user_password(username: str) -> str:
    return credentials.secret(f"superset_user_{username}")


def client(username: str = server.ADMIN, password: str | None = None) -> Superset:
    if password is None:
        password = server.admin_password() if username == server.ADMIN else user_password(username)
    return Superset(server.base_url(), username, password)


def _database(api: Superset, conn: Connection, existing: list[dict]) -> int:
    payload = {"database_name": conn.database_name, "sqlalchemy_uri": logins.login_url(conn.login, "postgresql+psycopg2"),
               "expose_in_sqllab": True, "allow_ctas": False, "allow_cvas": False, "allow_dml": False,
               "allow_run_async": False}
    return api.upsert("database", "database_name", conn.database_name, payload, existing)


def _dataset(api: Superset, db_id: int, schema: str, table: str, doc: catalog.TableDoc | None,
             existing: list[dict]) -> int:
    found = [d for d in existing if d.get("table_name") == table and d.get("schema") == schema
             and (d.get("database") or {}).get("id") == db_id]
    if found:
        ds_id = found[0]["id"]
        api.put(f"/api/v1/dataset/{ds_id}/refresh", {})  # columns added to the table since
    else:
        ds_id = api.post("/api/v1/dataset/", {"database": db_id, "schema": schema, "table_name": table})["id"]
    current = api.get(f"/api/v1/dataset/{ds_id}")["result"]
    described = (doc.columns if doc else {})
    calculated = dict(dashboards.CALCULATED.get((schema, table), {}))
    columns = []
    for c in current["columns"]:
        name = c["column_name"]
        item = {"id": c["id"], "column_name": name, "type": c.get("type"), "is_dttm": c.get("is_dttm", False),
                "filterable": True, "groupby": True, "is_active": True,
                "expression": c.get("expression") or "", "description": described.get(name) or c.get("description")}
        if name in calculated:
            item["expression"], item["description"] = calculated.pop(name)
        columns.append(item)
    for name, (expression, description) in calculated.items():
        columns.append({"column_name": name, "expression": expression, "description": description, "type": "TEXT",
                        "filterable": True, "groupby": True, "is_active": True, "is_dttm": False})
    api.put(f"/api/v1/dataset/{ds_id}", {"description": doc.description if doc else None, "columns": columns})
    return ds_id


def provision() -> dict:
    """Provision everything; returns {connection: {"database": id, "datasets": n, "dashboards": {slug: id}}}."""
    logins.ensure()
    docs = catalog.docs()
    api = client()
    summary: dict = {}
    db_rows = api.list("database", ("id", "database_name"))
    ds_rows = api.list("dataset", ("id", "table_name", "schema", "database.id"))
    chart_rows = api.list("chart", ("id", "slice_name"))
    dash_rows = api.list("dashboard", ("id", "slug"))
    with psycopg.connect(warehouse.url(), autocommit=True) as pg:
        readable = {c.login: catalog.readable_tables(pg, c.login) for c in connections()}
    for conn in connections():
        db_id = _database(api, conn, db_rows)
        datasets = {(s, t): _dataset(api, db_id, s, t, docs.get((s, t)), ds_rows) for s, t in readable[conn.login]}
        boards: dict[str, int] = {}
        for board in dashboards.DASHBOARDS:
            slug = f"trivsel-{board.domain}-{conn.slug_suffix}"
            title = f"{board.title} — {conn.label}"
            dash_id = api.upsert("dashboard", "slug", slug,
                                 {"dashboard_title": title, "slug": slug, "published": True}, dash_rows)
            placed: list[tuple[int, str]] = []
            for chart in board.charts:
                ds_id = datasets.get((chart.schema, chart.table))
                if ds_id is None:  # the login may not read it: left out, not shown broken
                    continue
                name = f"{chart.title} — {conn.label}"
                payload = {"slice_name": name, "viz_type": dashboards.form_data(chart, ds_id)["viz_type"],
                           "datasource_id": ds_id, "datasource_type": "table",
                           "params": dumps(dashboards.form_data(chart, ds_id)),
                           "query_context": dumps(dashboards.query_context(chart, ds_id)),
                           "dashboards": [dash_id], "description": f"{chart.schema}.{chart.table}"}
                placed.append((api.upsert("chart", "slice_name", name, payload, chart_rows), name))
            api.put(f"/api/v1/dashboard/{dash_id}", {
                "dashboard_title": title, "slug": slug, "published": True,
                "position_json": dumps(dashboards.position(title, placed)),
                "json_metadata": dumps({"refresh_frequency": 0, "color_scheme": "", "label_colors": {},
                                        "cross_filters_enabled": False}),
            })
            boards[slug] = dash_id
        summary[conn.database_name] = {"database": db_id, "datasets": len(datasets), "dashboards": boards}
    if not (server.venv_dir() / "bin" / "python").exists():
        # docker-compose: Superset runs in its own container; its roles and users are made there
        log.warning("Superset's interpreter is not here (%s): roles and users not provisioned", server.venv_dir())
        return summary
    server.security({
        "roles": [{"name": c.superset_role, "databases": [c.database_name]} for c in connections()],
        "users": [{"username": c.superset_user, "password": user_password(c.superset_user), "role": c.superset_role,
                   "first_name": c.superset_user, "last_name": "trivsel"} for c in connections()],
    })
    return summary
