"""Great Expectations on raw deliveries, run inside PostgreSQL (no rows are pulled into Python).

Suites are JSON files in expectations/, one per raw table, in GX 1.x suite form. A kwarg written as
{"$param": "period"} is filled in per delivery, so one suite serves every period and municipality.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
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
    first_row: int | None = None  # the first failing row (source_row), when the check is row-level


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
    from great_expectations.expectations import expectation

    # GX derives an expectation's type from its class name with two regex substitutions each time it
    # builds the expectation's configuration, which it does about ten times per kwarg while planning a
    # validation: about a tenth of a small delivery's validation. The function is pure: remember its answers.
    if getattr(expectation, "camel_to_snake", None) is _camel_to_snake_uncached():
        expectation.camel_to_snake = lru_cache(maxsize=4096)(expectation.camel_to_snake)
    return gx


def _camel_to_snake_uncached():
    from great_expectations import util

    return getattr(util, "camel_to_snake", None)


def _context(url: str):
    gx = _gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    # No analytics: GX releases that have them try the network on every run. GX_ANALYTICS_ENABLED (set at
    # import above) is what they read when the context's own setting is None; this sets that too.
    ctx.config.analytics_enabled = False
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    ds = ctx.data_sources.add_postgres(name="warehouse", connection_string=url)
    return ctx, ds


class _Warehouse:
    """What validating deliveries in one warehouse keeps per process (see _warehouse)."""

    def __init__(self, url: str) -> None:
        self.url = url
        # GX's import and context are built in a thread, and `ds` waits for them: in the meantime the
        # caller's first statements (the batch's views and PostgreSQL's run of the compiled checks, which
        # need no GX) run on the server. Why: a run's validate task is the only task running; importing GX
        # and building its context is seconds of one core's Python (29.5 s at load 11, docs/scaling.md), and the payroll table's checks are
        # seconds of the server's, so done one after the other they left a core idle each.
        self._ds = None
        self._ds_error: BaseException | None = None
        self._ds_thread = threading.Thread(target=self._build_ds, name="trivsel-gx-context", daemon=True)
        self._ds_thread.start()
        # Per process, not per delivery: each table gets one view name, registered once as a table asset
        # with one batch definition, and the view is pointed at the delivery being validated. Registering
        # an asset, a batch definition and deleting it again made GX re-serialise its whole config three
        # times per delivery. The random part keeps processes (and hosts) apart in the shared gx schema.
        self.token = secrets.token_hex(4)
        self.batches: dict[str, Any] = {}
        self.locks: dict[str, threading.Lock] = {}
        self.lock = threading.Lock()
        self.conn = None  # psycopg connection for the views' DDL, reused across deliveries
        self.schema_ready = False

    def _build_ds(self) -> None:
        try:
            self._ds = _context(self.url)[1]
        except BaseException as exc:  # noqa: BLE001 - raised again in the thread that asks for ds
            self._ds_error = exc

    @property
    def ds(self):
        """The process's GX PostgreSQL datasource for this warehouse (waits for its thread to build it)."""
        self._ds_thread.join()
        if self._ds_error is not None:
            raise self._ds_error
        return self._ds

    def table_lock(self, table: str) -> threading.Lock:
        with self.lock:
            return self.locks.setdefault(table, threading.Lock())

    def view_name(self, table: str) -> str:
        return f"{table}__{self.token}"

    def batch_definition(self, table: str):
        with self.lock:
            bd = self.batches.get(table)
            if bd is None:
                asset = self.ds.add_table_asset(name=table, table_name=self.view_name(table),
                                                schema_name=GX_SCHEMA)
                bd = self.batches[table] = asset.add_batch_definition_whole_table("delivery")
            return bd

    def ddl(self, statement) -> None:
        """Run one DDL statement on the reused connection; reconnect once if the warehouse dropped it."""
        import psycopg

        for attempt in (1, 2):
            with self.lock:
                if self.conn is None or self.conn.closed:
                    self.conn = psycopg.connect(self.url, autocommit=True)
                    self.schema_ready = False
                conn = self.conn
                try:
                    if not self.schema_ready:
                        _ensure_gx_schema(conn)
                        self.schema_ready = True
                    try:
                        conn.execute(statement)
                    except psycopg.errors.InvalidSchemaName:  # the gx schema was dropped since: recreate it
                        _ensure_gx_schema(conn)
                        conn.execute(statement)
                    return
                except psycopg.OperationalError:
                    self.close()
                    if attempt == 2:
                        raise

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass


_warehouses: dict[tuple[int, str], _Warehouse] = {}
_warehouses_lock = threading.Lock()


def _warehouse(url: str) -> _Warehouse:
    """One GX context, PostgreSQL datasource, view connection and set of table assets per process and
    warehouse: building them costs about as much as validating a small delivery, and an ingest task
    validates every delivery of its municipality. Keyed by pid too: nothing is shared across a fork (a
    parent's entries stay referenced, unused, so that the child never closes the parent's connection)."""
    key = (os.getpid(), url)
    with _warehouses_lock:
        wh = _warehouses.get(key)
        if wh is None:
            if sum(pid == key[0] for pid, _ in _warehouses) >= 2:
                _forget_all()
            wh = _warehouses[key] = _Warehouse(url)
        return wh


def prepare(url: str) -> None:
    """Start building the process's GX context for this warehouse now, in its thread (see _Warehouse), so
    that it overlaps whatever the caller sends PostgreSQL before validate_batch (the batch's ANALYZE)."""
    _warehouse(url)


def _forget(url: str) -> None:
    with _warehouses_lock:
        wh = _warehouses.pop((os.getpid(), url), None)
    if wh is not None:
        wh.close()


def _forget_all() -> None:
    for key in [k for k in _warehouses if k[0] == os.getpid()]:
        _warehouses.pop(key).close()


def _datasource(url: str):
    """The process's GX PostgreSQL datasource for this warehouse."""
    return _warehouse(url).ds


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


def _ensure_gx_schema(conn) -> None:
    from psycopg import sql

    if conn.execute("select to_regnamespace(%s) is not null", (GX_SCHEMA,)).fetchone()[0]:
        return  # made by the bootstrap, owned by loader (CREATE SCHEMA IF NOT EXISTS needs CREATE on the database)
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext('trivsel:schema'))")
        conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(GX_SCHEMA)))


def _point_view(wh: _Warehouse, table: str, delivery_id: int) -> str:
    """(Re)create the process's view of `table` as the delivery's rows. `create or replace` cannot drop
    columns, so the view is always dropped after use and created afresh here: it has the table's columns."""
    from psycopg import sql

    name = wh.view_name(table)
    wh.ddl(sql.SQL("create or replace view {}.{} as select * from raw.{} where delivery_id = {}").format(
        sql.Identifier(GX_SCHEMA), sql.Identifier(name), sql.Identifier(table), sql.Literal(int(delivery_id))))
    return name


def _drop_view(wh: _Warehouse, name: str) -> None:
    from psycopg import sql

    wh.ddl(sql.SQL("drop view if exists {}.{}").format(sql.Identifier(GX_SCHEMA), sql.Identifier(name)))


def _suite_file_stamp(path: Path):
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_mtime_ns, st.st_size


@lru_cache(maxsize=128)
def _cached_suite(path: Path, stamp) -> dict[str, Any] | None:
    with path.open(encoding="utf-8") as fh:
        return json.load(fh)


def _suite_spec(table: str) -> dict[str, Any] | None:
    """load_suite, without re-reading a suite file that has not changed."""
    path = suite_path(table)
    stamp = _suite_file_stamp(path)
    return None if stamp is None else _cached_suite(path, stamp)


def _build_suite(name: str, spec: dict[str, Any], params: dict[str, Any]):
    from great_expectations.core.expectation_suite import ExpectationSuite
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    suite = ExpectationSuite(name=name)
    for e in spec.get("expectations", []):
        suite.add_expectation_configuration(
            ExpectationConfiguration(type=e["type"], kwargs=_fill(e.get("kwargs", {}), params),
                                     meta=e.get("meta") or {}))
    return suite


def _key(cfg) -> str:
    """An expectation's identity in a result: its type and kwargs, without the batch_id GX adds."""
    kwargs = {k: v for k, v in dict(cfg.kwargs).items() if k != "batch_id"}
    return json.dumps([cfg.type, kwargs], sort_keys=True, default=repr)


def _validate(batch, suite):
    """The suite's failed results, as a SUMMARY validation of the whole suite would report them, in its order.

    Pass/fail first (BOOLEAN_ONLY: no example rows fetched), then SUMMARY for the failed expectations only.
    Returns (expectations evaluated, failed results)."""
    from great_expectations.core.expectation_suite import ExpectationSuite

    first = batch.validate(suite, result_format="BOOLEAN_ONLY")
    if first.success:
        return len(first.results), []
    failed = [r for r in first.results if not r.success]
    wanted = {_key(r.expectation_config) for r in failed}
    subset = [e for e in suite.expectations if _key(e.configuration) in wanted]
    detail = None
    if len(subset) == len(wanted) == len(failed):
        # Results come grouped by column (and errors first), so the subset's order can differ from the
        # full run's: put the detailed results back in the full run's order.
        second = batch.validate(ExpectationSuite(name=suite.name, expectations=subset), result_format="SUMMARY")
        by_key = {_key(r.expectation_config): r for r in second.results}
        if len(by_key) == len(second.results) and set(by_key) == wanted:
            detail = [by_key[_key(r.expectation_config)] for r in failed]
    if detail is None:  # cannot tell the failed expectations apart: the whole suite again, as it always was
        second = batch.validate(suite, result_format="SUMMARY")
        return len(second.results), [r for r in second.results if not r.success]
    return len(first.results), [r for r in detail if not r.success]


def validate_delivery(url: str, delivery_id: int, tables: list[str], params: dict[str, Any]) -> list[Failure]:
    """Validate one delivery's rows in each raw table that has a suite. Returns the failures (empty = pass)."""
    suites = {t: _suite_spec(t) for t in tables}
    if not any(suites.values()):
        return []
    wh = _warehouse(url)
    failures: list[Failure] = []
    for table, spec in suites.items():
        if spec is None:
            continue
        suite = _build_suite(spec.get("name", table), spec, params)
        # A view of the delivery's rows, validated as a table asset: a query asset makes GX run the query
        # itself and fetch every row into memory (a 200 MB delivery cost 300 MB of RSS); a table asset
        # only reads the catalog and runs aggregates. The view name is this process's for the table, so
        # two threads of one process take turns on it.
        with wh.table_lock(table):
            try:
                view = _point_view(wh, table, delivery_id)
                try:
                    # registered on first use, which checks that the view exists: so only now
                    batch = wh.batch_definition(table).get_batch()
                    evaluated, failed = _validate(batch, suite)
                finally:
                    _drop_view(wh, view)
            except Exception:
                _forget(url)  # e.g. the warehouse restarted: the next delivery builds a fresh context
                raise
        for r in failed:
            f = _describe(r)
            failures.append(Failure(table, f.expectation, f.column, f.reason, f.examples))
        log.info("GX %s (delivery %s): %d expectations, %d failed", table, delivery_id, evaluated, len(failed))
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


# ---------------------------------------------------------------- one validation per table per batch


@dataclass(frozen=True)
class BatchTiming:
    """What `timing validate ...` logs per table (read by trivsel.bench)."""
    table: str
    deliveries: int
    rows: int
    seconds: float


def _point_view_many(wh: _Warehouse, table: str, delivery_ids: list[int]) -> str:
    """The process's view of `table` as the rows of all these deliveries (see _point_view)."""
    from psycopg import sql

    name = wh.view_name(table)
    wh.ddl(sql.SQL("create or replace view {}.{} as select * from raw.{} where delivery_id = any({}::bigint[])")
           .format(sql.Identifier(GX_SCHEMA), sql.Identifier(name), sql.Identifier(table),
                   sql.Literal([int(d) for d in delivery_ids])))
    return name


def _reason(check, params: dict[str, Any], n: int) -> str:
    """The reason as _describe words it for GX's own result of the same expectation on one delivery."""
    kwargs = _gx_kwargs(check.type, json.dumps(_fill(check.kwargs, params), sort_keys=True, default=str))
    shown = {k: v for k, v in kwargs.items() if k not in ("column", "column_list", "batch_id")}
    reason = check.type + (f" on {check.column}" if check.column else "") + (f" {shown}" if shown else "")
    return reason + (f": observed {n!r}" if check.observed else f": {n} unexpected value(s)" if n else "")


@lru_cache(maxsize=1024)
def _gx_kwargs(etype: str, kwargs_json: str) -> dict[str, Any]:
    """The kwargs as GX's expectation holds them (0 becomes 0.0 for a between), so that a reason reads
    exactly as GX's own result of the expectation words it. Only for failing checks: rare, and cached."""
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    kwargs = json.loads(kwargs_json)
    try:
        cfg = ExpectationConfiguration(type=etype, kwargs=kwargs).to_domain_obj().configuration
        return {k: v for k, v in dict(cfg.kwargs).items() if k != "batch_id"}
    except Exception:  # noqa: BLE001 - the reason then shows the suite's own kwargs
        return kwargs


def _run_compiled(wh: _Warehouse, compiled, view: str) -> tuple[list[dict[str, Any]], list[Any]]:
    """GX runs the compiled query as one UnexpectedRowsExpectation (and the schema-level expectations
    as they are) on the batch view. Returns (failing rows, failed native results). GX returns at most
    200 rows of an unexpected-rows query; past that (a run with many failing deliveries) the rest is read
    in full straight from PostgreSQL.

    Why the failing rows are materialised first: UnexpectedRowsExpectation resolves two metrics from its
    query, the rows and their count, and runs the whole query for each, so every table's checks scanned the
    run's deliveries twice (measured: 148 s + 124 s of 273 s of GX SQL at bench scale 1). PostgreSQL now runs
    the compiled checks once into an unlogged table of the gx schema, and GX's expectation reads that small
    table (still through {batch}, so it stays bound to the batch it validates)."""
    from psycopg import sql

    found = f"{view}__found"
    found_sql = f'"{GX_SCHEMA}"."{found}"'
    wh.ddl(sql.SQL("create unlogged table {}.{} as {}").format(
        sql.Identifier(GX_SCHEMA), sql.Identifier(found), sql.SQL(compiled.direct_query(f'"{GX_SCHEMA}"."{view}"'))))
    try:
        wh.ds  # noqa: B018 - GX only from here on: its import (in _Warehouse's thread) overlapped the query above
        from great_expectations.core.expectation_suite import ExpectationSuite
        from great_expectations.expectations import UnexpectedRowsExpectation
        from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

        suite = ExpectationSuite(name=f"{compiled.table}__batch")
        suite.add_expectation(UnexpectedRowsExpectation(
            unexpected_rows_query=f"select * from {found_sql} where exists (select from {{batch}})",
            description=f"{compiled.table}: per delivery"))
        for e in compiled.native:
            suite.add_expectation_configuration(
                ExpectationConfiguration(type=e["type"], kwargs=e.get("kwargs", {}), meta=e.get("meta") or {}))
        batch = wh.batch_definition(compiled.table).get_batch()
        result = batch.validate(suite, result_format="COMPLETE")
        return _compiled_result(wh, compiled, result, found_sql)
    finally:
        wh.ddl(sql.SQL("drop table if exists {}.{}").format(sql.Identifier(GX_SCHEMA), sql.Identifier(found)))


def _compiled_result(wh: _Warehouse, compiled, result, found_sql: str) -> tuple[list[dict[str, Any]], list[Any]]:
    """(failing rows, failed native results) of the batch's GX result; past GX's 200 rows, the rest of the
    materialised failing rows is read straight from PostgreSQL."""
    rows: list[dict[str, Any]] = []
    native_failed = []
    for r in result.results:
        if r.expectation_config.type != "unexpected_rows_expectation":
            if not r.success:
                native_failed.append(r)
            continue
        if r.exception_info and r.exception_info.get("raised_exception"):
            raise RuntimeError(f"GX could not run the batch query of {compiled.table}: "
                               f"{r.exception_info.get('exception_message')}")
        res = r.result or {}
        rows = list((res.get("details") or {}).get("unexpected_rows") or [])
        if (res.get("observed_value") or 0) > len(rows):
            import psycopg

            with psycopg.connect(wh.url, autocommit=True) as conn:
                cur = conn.execute(f"select * from {found_sql}")
                names = [c.name for c in cur.description]
                rows = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    return rows, native_failed


def validate_batch(url: str, deliveries: dict[int, tuple[list[str], dict[str, Any]]]
                   ) -> tuple[dict[int, list[Failure]], list[BatchTiming]]:
    """Validate many deliveries at once: each raw table once, over all of the batch's deliveries that have
    rows there (a view over delivery_id = any(...)), with the suite compiled into SQL grouped by
    delivery_id (trivsel.validation_sql). `deliveries` maps delivery_id -> (its tables, its parameters).

    Returns ({delivery_id: failures}, one BatchTiming per table). The failures of one delivery are the ones
    validate_delivery finds for it, in the suite's order, with the same reason text, plus the first
    failing row. A table whose suite the compiler cannot translate is validated per delivery, as before."""
    import time

    from trivsel import validation_sql

    failures: dict[int, list[Failure]] = {did: [] for did in deliveries}
    by_table: dict[str, list[int]] = {}
    for did, (tables, _params) in deliveries.items():
        for t in tables:
            by_table.setdefault(t, []).append(did)
    timings: list[BatchTiming] = []
    for table, dids in sorted(by_table.items()):
        spec = _suite_spec(table)
        if spec is None:
            continue
        t0 = time.time()
        params = {did: deliveries[did][1] for did in dids}
        try:
            compiled = validation_sql.with_params(validation_sql.compile_suite(table, spec), params)
        except validation_sql.Unsupported as exc:
            log.info("GX %s: validated per delivery (%s)", table, exc)
            for did in dids:
                failures[did] += validate_delivery(url, did, [table], params[did])
            timings.append(BatchTiming(table, len(dids), -1, time.time() - t0))
            log.info("timing validate %s deliveries %d rows -1 gx %.3fs", table, len(dids), timings[-1].seconds)
            continue
        wh = _warehouse(url)
        with wh.table_lock(table):
            try:
                view = _point_view_many(wh, table, dids)
                try:
                    rows, native_failed = _run_compiled(wh, compiled, view)
                    import psycopg

                    with psycopg.connect(url, autocommit=True) as conn:
                        total = conn.execute(f'select count(*) from "{GX_SCHEMA}"."{view}"').fetchone()[0]
                finally:
                    _drop_view(wh, view)
            except Exception:
                _forget(url)
                raise
        found: dict[int, list[tuple[int, Failure]]] = {did: [] for did in dids}
        for row in rows:
            did, number = int(row["delivery_id"]), int(row["check_no"])
            check = compiled.checks[number]
            n = int(row["n"])
            examples = json.loads(row["examples"]) if row.get("examples") else None
            found[did].append((number, Failure(
                table, check.type, check.column, _reason(check, params[did], n),
                json.dumps(examples[:10], default=str, ensure_ascii=False) if examples else None,
                first_row=None if row.get("first_row") is None else int(row["first_row"]))))
        native_at = {id(e): i for i, e in enumerate(spec.get("expectations", []))}
        for r in native_failed:  # the table's schema: the same for every delivery of the batch
            f = _describe(r)
            number = next((native_at[id(e)] for e in compiled.native if e["type"] == f.expectation), -1)
            for did in dids:
                found[did].append((number, Failure(table, f.expectation, f.column, f.reason, f.examples)))
        for did in dids:
            failures[did] += [f for _n, f in sorted(found[did], key=lambda x: x[0])]
        seconds = time.time() - t0
        timings.append(BatchTiming(table, len(dids), int(total), seconds))
        log.info("timing validate %s deliveries %d rows %d gx %.3fs", table, len(dids), total, seconds)
        log.info("GX %s (%d deliveries): %d checks, %d failing (delivery, check)", table, len(dids),
                 len(compiled.checks) + len(compiled.native), len(rows) + len(native_failed) * len(dids))
    return failures, timings
