"""`python -m trivsel.bench.loadraw`: the load to raw alone, month 1 and month 13, without Airflow.

Why: the bench's "load to raw" is a sum over ~400 deliveries inside ~100 task instances; finding where it goes
(and whether it grows with history) needs the loader alone, repeatable in a minute. This generates a national
month (trivsel.bench.generate), runs `ingest_municipality(..., validate=False)` for every municipality as the
DAG's ingest tasks do (serially), and sums the loader's `timing` lines (parse+COPY). Then, with `--history`,
it marks the month loaded, preloads the months between set-based (trivsel.bench.history) and loads month
1 + history + 1 the same way. Each month also times one ANALYZE per raw table that got rows: what the run's
validate task now pays (trivsel.loading.validating.refresh_statistics). `--sql` prints the statements that
took the most time.

It empties raw, audit and quarantine of the warehouse it runs on, like the bench: only the embedded
warehouse, and only a throwaway TRIVSEL_HOME (default .local/loadraw, port 55437). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import collections
import logging
import os
import re
import shutil
import time

TIMING_LOAD = re.compile(r"^timing \d{3}/(?P<source>\w+) .* load (?P<load>[\d.]+)s ")


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("timing "):
            self.lines.append(message)


def _trace_sql(totals: dict) -> None:
    """Time every statement by its first 100 characters (the loader's own connection included)."""
    import psycopg

    original = psycopg.Cursor.execute

    def execute(self, query, params=None, **kw):
        t = time.perf_counter()
        try:
            return original(self, query, params, **kw)
        finally:
            text = query if isinstance(query, str) else query.as_string(self.connection)
            entry = totals[" ".join(text.split())[:100]]
            entry[0] += 1
            entry[1] += time.perf_counter() - t

    psycopg.Cursor.execute = execute


def _reset() -> None:
    from trivsel import schema, settings, warehouse
    from trivsel.bench.run import loader_tables
    from trivsel.loading import sync_config

    if warehouse.is_external():
        raise SystemExit("trivsel.bench.loadraw empties its warehouse: run it on the embedded one")
    warehouse.start()
    with warehouse.connect(autocommit=True) as conn:
        schema.ensure(conn)
        tables = loader_tables(conn)
        if tables:
            conn.execute("truncate " + ", ".join(tables) + " cascade")
    sync_config()
    for folder in (settings.inbox_root(), settings.archive_root()):
        shutil.rmtree(folder, ignore_errors=True)


def load_month(period: str, scale: float, sources: tuple[str, ...], handler: _Lines, validate: bool = False,
               profile: str | None = None) -> dict:
    """Load one generated month as the ingest tasks do; with `validate`, then validate it as the run's
    validate task does (validate_run over the month's deliveries, its ANALYZE included), optionally under
    cProfile (`profile`: where to write the stats)."""
    from psycopg import sql

    from trivsel import settings, warehouse
    from trivsel.bench import generate as gen
    from trivsel.loading import ingest_municipality

    shutil.rmtree(settings.inbox_root(), ignore_errors=True)
    gen.generate(settings.inbox_root(), scale, period, sources)
    handler.lines.clear()
    load_start = os.getloadavg()[0]
    t0 = time.perf_counter()
    run_id = f"loadraw-{period}" if validate else None
    codes = [m.code for m in gen.municipalities()]
    for code in codes:
        ingest_municipality(code, period, run_id=run_id, validate=False)
    wall = time.perf_counter() - t0
    by_source: dict[str, float] = collections.defaultdict(float)
    for line in handler.lines:
        if m := TIMING_LOAD.match(line):
            by_source[m.group("source")] += float(m.group("load"))
    checked = _validate(run_id, codes, period, handler, profile) if validate else {}
    t1 = time.perf_counter()
    if not validate:
        with warehouse.connect(autocommit=True) as conn:
            tables = [r[0] for r in conn.execute(
                "select distinct table_name from information_schema.columns where table_schema = 'raw'"
                " and column_name = 'delivery_id'")]
            for table in tables:
                conn.execute(sql.SQL("analyze raw.{}").format(sql.Identifier(table)))
            conn.execute("update audit.delivery set status = 'loaded' where status = 'validating' and period = %s",
                         (period,))
    return {"period": period, "load_to_raw": round(sum(by_source.values()), 1),
            "by_source": {k: round(v, 1) for k, v in by_source.items()}, "wall": round(wall, 1),
            **({"analyze_once_per_table": round(time.perf_counter() - t1, 1)} if not validate else checked),
            "load_average": [round(load_start, 1), round(os.getloadavg()[0], 1)]}


TIMING_VALIDATE = re.compile(r"^timing validate (?P<table>\w+) deliveries (?P<n>\d+) rows (?P<rows>-?\d+) "
                             r"gx (?P<gx>[\d.]+)s")


def _validate(run_id: str, codes: list[str], period: str, handler: _Lines, profile: str | None) -> dict:
    """The run's validate task on the month just loaded: its wall, and GX's seconds per table (the
    `timing validate` lines; the rest of the wall is the ANALYZE, the locks and the decisions)."""
    from trivsel.loading.validating import validate_run

    handler.lines.clear()
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    t0 = time.perf_counter()
    failed = validate_run(run_id, codes, [period])
    wall = time.perf_counter() - t0
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile)
    per_table = {m.group("table"): float(m.group("gx")) for line in handler.lines
                 if (m := TIMING_VALIDATE.match(line))}
    return {"validate_wall": round(wall, 1), "gx_by_table": {k: round(v, 2) for k, v in per_table.items()},
            "gx_sum": round(sum(per_table.values()), 1),
            "quarantined": sum(len(lines) for lines in failed.values())}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m trivsel.bench.loadraw", description=__doc__.splitlines()[0])
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--period", default="2015-12")
    p.add_argument("--history", type=int, default=0, help="months preloaded before the second month (11: month 13)")
    p.add_argument("--sources", default="hr_absence,survey,incidents")
    p.add_argument("--sql", action="store_true", help="print the statements that took the most time")
    p.add_argument("--validate", action="store_true",
                   help="then validate each month as the run's validate task does (validate_run), timed")
    p.add_argument("--profile", help="with --validate: write month 1's validation's cProfile stats here")
    args = p.parse_args(argv)
    from trivsel import settings

    if "TRIVSEL_HOME" not in os.environ:
        os.environ["TRIVSEL_HOME"] = str(settings.ROOT / ".local" / "loadraw")
        os.environ.setdefault("TRIVSEL_PG_PORT", "55437")
    from trivsel import warehouse
    from trivsel.bench import generate as gen
    from trivsel.bench import history
    from trivsel.keys import KEY_ENV, ensure_local_key

    os.environ["TRIVSEL_CONFIG"] = str(gen.write_config(settings.home() / "bench" / "municipalities.yml"))
    os.environ.setdefault(KEY_ENV, ensure_local_key())
    totals: dict = collections.defaultdict(lambda: [0, 0.0])
    if args.sql:
        _trace_sql(totals)
    handler = _Lines()
    logging.getLogger("trivsel").addHandler(handler)
    logging.getLogger("trivsel").setLevel(logging.INFO)
    _reset()
    sources = tuple(args.sources.split(","))
    first = load_month(args.period, args.scale, sources, handler, args.validate, args.profile)
    print(f"month 1: {first}", flush=True)
    if args.history:
        with warehouse.connect(autocommit=True) as conn:
            pre = history.preload(conn, args.period, list(range(1, args.history + 1)))
        print(f"preloaded {args.history} months: {pre}", flush=True)
        last = load_month(history.shifted_period(args.period, args.history + 1), args.scale, sources, handler,
                          args.validate)
        print(f"month {args.history + 2}: {last}", flush=True)
        if first["load_to_raw"]:
            print(f"load to raw, month {args.history + 2} / month 1: {last['load_to_raw'] / first['load_to_raw']:.2f}")
    for text, (n, seconds) in sorted(totals.items(), key=lambda kv: -kv[1][1])[:30]:
        print(f"{seconds:8.2f}s {n:6d}  {text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
