"""History for the month-13 / month-121 targets, preloaded set-based instead of through 120 DAG runs.

Issue 15 lets the bench put the history straight into raw and audit as loaded deliveries: what those runs would
have left there. Every loaded delivery of the first measured month is copied, for each shift k (months after
the first), as a new `audit.delivery` row (status loaded, its own checksum) and its raw rows with the period
shifted: a text value equal to the first period becomes the new period, dates move k months, a `year` column
moves with them, and the ids that carry the year (the registers' case numbers) get the new year, so they stay
unique per municipality. A wave or yearly source (survey, incidents) is copied only every 12 months, as the
generator writes a survey wave and the incident registers each December. One `insert ... select` per raw table
for all shifts at once.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from psycopg import sql

#: sources the generator delivers once a year (the survey wave and the incident registers, each December)
YEARLY_SOURCES = ("survey", "incidents")
#: text columns whose values start with the year of the register (AS-2015-00001, 201500001): the year moves
YEAR_KEYED_COLUMNS = ("case_id", "incident_id")
HISTORY_RUN_ID = "bench-history"


def shifted_period(period: str, k: int) -> str:
    y, m = int(period[:4]), int(period[5:]) + k
    y, m = y + (m - 1) // 12, (m - 1) % 12 + 1
    return f"{y:04d}-{m:02d}"


def _column_expr(name: str, data_type: str) -> sql.Composable:
    col = sql.Identifier("r", name)
    if name == "delivery_id":
        return sql.SQL("m.new_id")
    if data_type == "date":
        return sql.SQL("({} + m.k * interval '1 month')::date").format(col)
    if data_type.startswith("timestamp"):
        return sql.SQL("{} + m.k * interval '1 month'").format(col)
    if name == "year" and data_type in ("integer", "bigint", "smallint"):
        return sql.SQL("{} + m.year_shift").format(col)
    if data_type in ("text", "character varying"):
        if name in YEAR_KEYED_COLUMNS:
            return sql.SQL("regexp_replace({}, '^(\\D*)' || m.first_year, '\\1' || m.new_year)").format(col)
        return sql.SQL("case when {c} = m.first_period then m.period else {c} end").format(c=col)
    return col


def preload(conn, first_period: str, shifts: list[int]) -> dict:
    """Copy the first period's loaded deliveries to `first_period + k` for each k in `shifts`. Returns the
    deliveries and raw rows added (per table) and the seconds it took. `conn` is a superuser or loader
    connection in autocommit mode; everything happens in one transaction."""
    t0 = time.perf_counter()
    rows: dict[str, int] = {}
    table_seconds: dict[str, float] = {}
    with conn.transaction():
        conn.execute("create temp table bench_map (old_id bigint, new_id bigint, k int, period text,"
                     " first_period text, first_year text, new_year text, year_shift int) on commit drop")
        conn.execute(
            """insert into bench_map
               select d.delivery_id, nextval(pg_get_serial_sequence('audit.delivery', 'delivery_id')), s.k,
                      to_char(to_date(%(p)s, 'YYYY-MM') + s.k * interval '1 month', 'YYYY-MM'), %(p)s,
                      left(%(p)s, 4),
                      to_char(to_date(%(p)s, 'YYYY-MM') + s.k * interval '1 month', 'YYYY'),
                      extract(year from to_date(%(p)s, 'YYYY-MM') + s.k * interval '1 month')::int
                        - left(%(p)s, 4)::int
                 from audit.delivery d cross join unnest(%(ks)s::int[]) as s(k)
                where d.period = %(p)s and d.status = 'loaded'
                  and (d.source <> all(%(yearly)s) or s.k %% 12 = 0)""",
            {"p": first_period, "ks": list(shifts), "yearly": list(YEARLY_SOURCES)})
        cols = [r[0] for r in conn.execute(
            "select column_name from information_schema.columns where table_schema = 'audit'"
            " and table_name = 'delivery' order by ordinal_position")]
        override = {
            "delivery_id": "m.new_id", "period": "m.period", "status": "'loaded'", "reason": "null",
            "run_id": f"'{HISTORY_RUN_ID}'", "decided_at": "now()", "received_at": "now()",
            "file_name": "replace(replace(d.file_name, m.first_period, m.period), m.first_year, m.new_year)",
            "checksum_sha256": "encode(sha256(convert_to(d.checksum_sha256 || ':' || m.k, 'UTF8')), 'hex')",
        }
        exprs = [sql.SQL(override[c]) if c in override else sql.Identifier("d", c) for c in cols]
        cur = conn.execute(sql.SQL("insert into audit.delivery ({}) select {} from audit.delivery d"
                                   " join bench_map m on m.old_id = d.delivery_id").format(
            sql.SQL(", ").join(map(sql.Identifier, cols)), sql.SQL(", ").join(exprs)))
        deliveries = cur.rowcount
        tables = [r[0] for r in conn.execute(
            """select c.table_name from information_schema.columns c
                 join pg_tables t on t.schemaname = c.table_schema and t.tablename = c.table_name
                where c.table_schema = 'raw' and c.column_name = 'delivery_id' order by 1""")]
        for table in tables:
            tcols = conn.execute(
                "select column_name, data_type from information_schema.columns where table_schema = 'raw'"
                " and table_name = %s order by ordinal_position", (table,)).fetchall()
            t1 = time.perf_counter()
            cur = conn.execute(sql.SQL("insert into raw.{t} ({cols}) select {exprs} from raw.{t} r"
                                       " join bench_map m on m.old_id = r.delivery_id").format(
                t=sql.Identifier(table), cols=sql.SQL(", ").join(sql.Identifier(n) for n, _ in tcols),
                exprs=sql.SQL(", ").join(_column_expr(n, dt) for n, dt in tcols)))
            if cur.rowcount:
                rows[table] = cur.rowcount
                table_seconds[table] = round(time.perf_counter() - t1, 2)
    t1 = time.perf_counter()
    for table in rows:
        conn.execute(sql.SQL("analyze raw.{}").format(sql.Identifier(table)))
    return {"deliveries": deliveries, "raw_rows": rows, "table_seconds": table_seconds,
            "analyze_seconds": round(time.perf_counter() - t1, 2), "seconds": round(time.perf_counter() - t0, 1)}


def history_rows(conn) -> dict:
    """Rows of history in the warehouse: loaded deliveries, periods and raw rows (planner estimates are not
    enough here: counted)."""
    deliveries, periods = conn.execute(
        "select count(*), count(distinct period) from audit.delivery where status = 'loaded'").fetchone()
    raw = 0
    for (table,) in conn.execute(
            "select tablename from pg_tables where schemaname = 'raw' and tablename not like 'config\\_%'").fetchall():
        raw += conn.execute(sql.SQL("select count(*) from raw.{}").format(sql.Identifier(table))).fetchone()[0]
    return {"loaded_deliveries": deliveries, "periods": periods, "raw_rows": raw}


def catch_up() -> dict:
    """One untimed `trivsel dbt run` of every model but the certified ones (as bench.run.reset does for a
    fresh warehouse), so the marts hold the preloaded history before the measured month. Returns its wall
    and dbt's own time per node (run_results.json), so that a slow history shows where it went."""
    from trivsel.cli import main as trivsel_main

    t0 = time.perf_counter()
    rc = trivsel_main(["dbt", "run", "--exclude", "path:models/certified", "--quiet"])
    if rc:
        raise RuntimeError(f"the catch-up dbt run failed ({rc})")
    return {"seconds": round(time.perf_counter() - t0, 1), "nodes": node_seconds()}


def catch_up_statistics() -> dict:
    """The statistics' kept state brought up to the preloaded history, untimed, as the monthly runs of those
    months would have left it: each domain's significance tests run once as the DAG's task runs them
    (pipeline.run_statistics), which hashes the new deliveries' inputs (trivsel.stats.part_hash's cache) and
    updates or rebuilds the absence halves (trivsel.stats.absence_halves). Without it the measured month
    pays, once, the hashing and the halves of every preloaded month: at month 121 @0.1, 69 s of hashes and
    216 s of halves in the significance tests, a cost of the bench's shortcut that no production month has
    (each month's run hashes its own deliveries). Returns each domain's seconds and rows."""
    from trivsel import pipeline

    out: dict[str, dict] = {}
    t0 = time.perf_counter()
    for domain in pipeline.STAT_DOMAINS:
        t1 = time.perf_counter()
        rows = pipeline.run_statistics(domain, run_id=HISTORY_RUN_ID)
        out[domain] = {"seconds": round(time.perf_counter() - t1, 1), "rows": rows}
    return {"seconds": round(time.perf_counter() - t0, 1), "domains": out}


def settle(conn) -> dict:
    """`VACUUM (ANALYZE)` of the warehouse after the preload and the catch-ups, untimed (`conn` autocommit, the
    bootstrap login, which may vacuum every table). The preload and the catch-up write ten years of rows
    minutes before the measured month; without this, autovacuum and the first reads' hint bits process them
    during it, on the same two cores: the fifth and sixth rounds' month 121 ran while autovacuum worked through
    the 6.6 M rows the catch-up had just written (pg_stat_user_tables). A warehouse with ten real years of
    history had them vacuumed long ago. Returns its seconds."""
    t0 = time.perf_counter()
    conn.execute("vacuum (analyze)")
    return {"seconds": round(time.perf_counter() - t0, 1)}


def node_seconds(path: Path | None = None) -> dict[str, float]:
    """dbt's execution time per node of its last invocation (target/run_results.json), slowest first."""
    from trivsel import settings

    path = path or settings.dbt_dir() / "target" / "run_results.json"
    try:
        results = json.loads(path.read_text())["results"]
    except (OSError, ValueError, KeyError):
        return {}
    times = {r["unique_id"].split(".", 2)[-1]: round(r.get("execution_time") or 0.0, 2) for r in results}
    return dict(sorted(times.items(), key=lambda kv: -kv[1]))
