"""Great Expectations on raw deliveries, run inside PostgreSQL (no rows are pulled into Python).

Suites are JSON files in expectations/, one per raw table, in GX 1.x suite form. A kwarg written as
{"$param": "period"} is filled in per delivery, so one suite serves every period and municipality.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from trivsel import settings

log = logging.getLogger(__name__)
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


@dataclass(frozen=True)
class Failure:
    table: str
    expectation: str
    column: str | None
    reason: str
    examples: str | None = None


def suite_path(table: str) -> Path:
    return settings.expectations_dir() / f"{table}.json"


def load_suite(table: str) -> dict[str, Any] | None:
    path = suite_path(table)
    if not path.exists():
        return None
    with path.open(encoding="utf-8") as fh:
        return json.load(fh)


def _fill(value: Any, params: dict[str, Any]) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$param"}:
            name = value["$param"]
            if name not in params:
                raise KeyError(f"suite asks for unknown parameter {name!r}; known: {sorted(params)}")
            return params[name]
        return {k: _fill(v, params) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, params) for v in value]
    return value


@lru_cache(maxsize=1)
def _gx():
    for name in ("great_expectations", "great_expectations._docs_decorators"):
        logging.getLogger(name).setLevel(logging.WARNING)
    import great_expectations as gx

    return gx


def _context(url: str):
    gx = _gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    ds = ctx.data_sources.add_postgres(name="warehouse", connection_string=url)
    return ctx, ds


@lru_cache(maxsize=2)
def _datasource(url: str):
    """One GX context and PostgreSQL datasource per process and warehouse: building them costs about as much
    as validating a small delivery, and an ingest task validates every delivery of its municipality."""
    return _context(url)[1]


def _describe(result) -> Failure:
    cfg = result.expectation_config
    kwargs = dict(cfg.kwargs)
    column = kwargs.get("column") or (",".join(kwargs["column_list"]) if "column_list" in kwargs else None)
    res = result.result or {}
    parts = []
    if res.get("unexpected_count"):
        parts.append(f"{res['unexpected_count']} unexpected value(s)")
    if res.get("observed_value") is not None:
        parts.append(f"observed {res['observed_value']!r}")
    shown = {k: v for k, v in kwargs.items() if k not in ("column", "column_list", "batch_id")}
    reason = f"{cfg.type}" + (f" on {column}" if column else "") + (f" {shown}" if shown else "")
    if parts:
        reason += ": " + ", ".join(parts)
    if result.exception_info and result.exception_info.get("raised_exception"):
        reason += f" (error: {result.exception_info.get('exception_message')})"
    examples = res.get("partial_unexpected_list")
    return Failure(table="", expectation=cfg.type, column=column, reason=reason,
                   examples=json.dumps(examples[:10], default=str, ensure_ascii=False) if examples else None)


GX_SCHEMA = "gx"


def _delivery_view(url: str, table: str, delivery_id: int) -> str:
    import psycopg
    from psycopg import sql

    name = f"{table}__{int(delivery_id)}"
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext('trivsel:schema'))")
        conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(GX_SCHEMA)))
        conn.execute(sql.SQL("create or replace view {}.{} as select * from raw.{} where delivery_id = {}").format(
            sql.Identifier(GX_SCHEMA), sql.Identifier(name), sql.Identifier(table), sql.Literal(int(delivery_id))))
    return name


def _drop_view(url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop view if exists {}.{}").format(sql.Identifier(GX_SCHEMA), sql.Identifier(name)))


def validate_delivery(url: str, delivery_id: int, tables: list[str], params: dict[str, Any]) -> list[Failure]:
    """Validate one delivery's rows in each raw table that has a suite. Returns the failures (empty = pass)."""
    from great_expectations.core.expectation_suite import ExpectationSuite
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    suites = {t: load_suite(t) for t in tables}
    if not any(suites.values()):
        return []
    ds = _datasource(url)
    failures: list[Failure] = []
    for table, spec in suites.items():
        if spec is None:
            continue
        suite = ExpectationSuite(name=spec.get("name", table))
        for e in spec.get("expectations", []):
            suite.add_expectation_configuration(
                ExpectationConfiguration(type=e["type"], kwargs=_fill(e.get("kwargs", {}), params),
                                         meta=e.get("meta") or {}))
        # A view of the delivery's rows, validated as a table asset: a query asset makes GX run the query
        # itself and fetch every row into memory (a 200 MB delivery cost 300 MB of RSS); a table asset
        # only reads the catalog and runs aggregates.
        view = _delivery_view(url, table, delivery_id)
        try:
            asset = ds.add_table_asset(name=f"{table}_{delivery_id}", table_name=view, schema_name=GX_SCHEMA)
            batch = asset.add_batch_definition_whole_table("delivery").get_batch()
            # Pass/fail first (a third cheaper: no example rows fetched); the examples only when needed.
            result = batch.validate(suite, result_format="BOOLEAN_ONLY")
            if not result.success:
                result = batch.validate(suite, result_format="SUMMARY")
        except Exception:
            _datasource.cache_clear()  # e.g. the warehouse restarted: the next delivery builds a fresh one
            raise
        finally:
            if f"{table}_{delivery_id}" in ds.get_asset_names():
                ds.delete_asset(f"{table}_{delivery_id}")  # the datasource is reused: don't let it grow
            _drop_view(url, view)
        for r in result.results:
            if not r.success:
                f = _describe(r)
                failures.append(Failure(table, f.expectation, f.column, f.reason, f.examples))
        log.info("GX %s (delivery %s): %d expectations, %d failed", table, delivery_id,
                 len(result.results), sum(not r.success for r in result.results))
    return failures


def validate_query(url: str, name: str, query: str, spec: dict[str, Any],
                   params: dict[str, Any] | None = None) -> tuple[int, list[Failure]]:
    """Validate the rows of any SQL query (e.g. a certified table) against a suite spec, inside PostgreSQL.

    Returns (expectations evaluated, failures). Used by trivsel.certify on the certified outputs.
    """
    from great_expectations.core.expectation_suite import ExpectationSuite
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    params = params or {}
    _, ds = _context(url)
    suite = ExpectationSuite(name=spec.get("name", name))
    for e in spec.get("expectations", []):
        suite.add_expectation_configuration(
            ExpectationConfiguration(type=e["type"], kwargs=_fill(e.get("kwargs", {}), params),
                                     meta=e.get("meta") or {}))
    asset = ds.add_query_asset(name=name, query=query)
    batch = asset.add_batch_definition_whole_table("all").get_batch()
    result = batch.validate(suite, result_format="SUMMARY")
    failures = []
    for r in result.results:
        if not r.success:
            f = _describe(r)
            failures.append(Failure(name, f.expectation, f.column, f.reason, f.examples))
    log.info("GX %s: %d expectations, %d failed", name, len(result.results), len(failures))
    return len(result.results), failures
