"""Great Expectations Data Docs of the raw and certified suites (`trivsel docs`, run by `make docs`).

A file-backed GX context in $TRIVSEL_HOME/gx holds the suites of expectations/: each certified suite
(certified_*.json) is validated against its published table as `evaluator`, and each raw suite against
every loaded delivery of its raw table as `loader`, with the delivery's parameters (period, municipality,
year, units) as the loader fills them in. The results are rendered as Data Docs
($TRIVSEL_HOME/gx/gx/uncommitted/data_docs/local_site/index.html) and then pointed at local copies of
their scripts and styles (trivsel.datadocs_offline), so they render without the internet.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from trivsel import datadocs_offline, settings, warehouse
from trivsel.certify import TABLES, threshold
from trivsel.config import load_config
from trivsel.validation import _fill, _gx

log = logging.getLogger(__name__)


def _suite(spec: dict[str, Any], params: dict[str, Any], name: str):
    from great_expectations.core.expectation_suite import ExpectationSuite
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    suite = ExpectationSuite(name=name, meta=spec.get("meta") or {})
    for e in spec["expectations"]:
        suite.add_expectation_configuration(ExpectationConfiguration(
            type=e["type"], kwargs=_fill(e.get("kwargs", {}), params), meta=e.get("meta") or {}))
    return suite


def _run(ctx, gx, ds, name: str, query: str, suite) -> bool:
    suite = ctx.suites.add(suite)
    asset = ds.add_query_asset(name=name, query=query)
    bd = asset.add_batch_definition_whole_table("batch")
    vd = ctx.validation_definitions.add(gx.ValidationDefinition(name=name, data=bd, suite=suite))
    result = vd.run(result_format="SUMMARY")
    log.info("data docs: %s %s", name, "passed" if result.success else "FAILED")
    return bool(result.success)


def raw_deliveries(table: str) -> list[dict[str, Any]]:
    """Every loaded delivery with rows in raw.<table>: (delivery_id, municipality_code, period)."""
    import psycopg
    from psycopg import sql
    from psycopg.rows import dict_row

    with psycopg.connect(warehouse.url(role=warehouse.LOADER), autocommit=True, row_factory=dict_row) as conn:
        exists = conn.execute("select to_regclass(%s) as t", (f"raw.{table}",)).fetchone()["t"]
        if not exists:
            return []
        return conn.execute(sql.SQL(
            "select d.delivery_id, d.municipality_code, d.period from audit.delivery d"
            " where d.status = 'loaded' and exists (select 1 from raw.{} r where r.delivery_id = d.delivery_id)"
            " order by d.delivery_id").format(sql.Identifier(table))).fetchall()


def build(root: Path | None = None, latest_only: bool = False) -> Path:
    """Validate every suite and render the site; latest_only: each raw suite against the latest loaded
    delivery of its table only (every suite still validated, at a fraction of the cost: for tests)."""
    gx = _gx()
    root = root or settings.home() / "gx"
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    ctx = gx.get_context(mode="file", project_root_dir=str(root))
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    certified = ctx.data_sources.add_postgres(name="certified",
                                              connection_string=warehouse.url(role=warehouse.EVALUATOR))
    small = threshold()
    params = {"small_counts": list(range(1, small)), "small_cell_threshold": small}
    certified_tables = set(TABLES.values())
    for table in sorted(certified_tables):
        path = settings.expectations_dir() / f"certified_{table}.json"
        if path.exists():
            spec = json.loads(path.read_text(encoding="utf-8"))
            _run(ctx, gx, certified, f"certified_{table}", f'select * from certified."{table}"',
                 _suite(spec, params, spec["name"]))
    raw = ctx.data_sources.add_postgres(name="raw", connection_string=warehouse.url(role=warehouse.LOADER))
    config = load_config()
    units = {m.code: m.unit_names for m in config.municipalities}
    for path in sorted(settings.expectations_dir().glob("*.json")):
        table = path.stem
        if table.startswith("certified_"):
            continue
        spec = json.loads(path.read_text(encoding="utf-8"))
        deliveries = raw_deliveries(table)
        for d in deliveries[-1:] if latest_only else deliveries:
            p = {"period": d["period"], "municipality_code": d["municipality_code"], "year": int(d["period"][:4]),
                 "unit_names": units.get(d["municipality_code"], [])}
            name = f"raw_{table}_{d['municipality_code']}_{d['period']}_{d['delivery_id']}"
            _run(ctx, gx, raw, name, f'select * from raw."{table}" where delivery_id = {int(d["delivery_id"])}',
                 _suite(spec, p, f"{spec.get('name', table)}__{d['municipality_code']}_{d['period']}_{d['delivery_id']}"))
    ctx.build_data_docs()
    index = next(root.rglob("data_docs/local_site/index.html"))
    counts = datadocs_offline.localise(index.parent)
    log.info("data docs: %(pages)d pages pointed at local assets (%(replaced)d replaced, %(removed)d removed)",
             counts)
    return index
