"""The payroll employee test's input kept per half, so that a month reads the months that moved, not all of
history (trivsel.stats.absence, reporting.absence_employee_test).

Why: the test compares each employee's mean sick days per month in the first half of a municipality's months
with the last half. absence.VALUES_SQL computes those means from every employee-month of the recomputed
municipalities, and every municipality is recomputed every month (it delivered a month), so the statistics
read and sorted the whole payroll history each month: the cost of month 121 grew with its 120 months.

What the test needs per (municipality, scope, employee) and half is two numbers: the sum of the sick days of
the months in the half, and the number of those months. When a month is added the halves move by at most one
month each (n → n + 1 months: the first half gains the month that the middle gave up, the last half gains the
new month and gives one up to the middle), so the sums change by the contributions of at most three months.
This module keeps them in person.stat_absence_half (person-level: pseudonymised employees; only the
transformer reads `person`) and applies those changes; absence.VALUES_SQL stays the reference and the path
for a source without deliveries.

Exactness: the mean is computed as VALUES_SQL computes it, `(sum / count)::double precision` in numeric, so
the sum must be the same numeric, value and display scale: PostgreSQL's numeric division chooses the
result's digits from its operands' display scales, and a sum's display scale is the largest of its terms'.
Adding and subtracting terms keeps the value exact but not that maximum, so the sums are kept per display
scale of a month's contribution (`dscale`): each class sums terms of one scale (its sum keeps that scale
exactly), a class whose months are all gone is deleted, and the half's sum is the sum over its classes, whose
scale is the largest class left: the same numeric as the sum over the half's rows.

Trust: the state of a municipality records the count and the two hash sums (trivsel.stats.part_hash's, over
the columns the statistic reads) of the rows it was built from, and the deliveries and months they came in.
A month's update is taken only when the new deliveries bring months the state does not hold yet and the
state's hash plus the new rows' hash equals the municipality's current input hash (what scope_state
fingerprints it by): then the rows now are the rows then plus the new ones. The update moves every month
whose half changes (one or two for a new latest month; more for a month delivered late inside the history).
Anything else (a correction that replaced a delivery, rows for a month the state holds, rows edited in
place, no state yet) rebuilds that municipality's state from all its rows, as VALUES_SQL reads them; so does a
backfill that brings more new months than the state holds (one scan is then cheaper than the moves).
sick_days is never null in the fct (int_absence__employee_month coalesces it); a null would count as 0 here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from psycopg import errors, sql
from psycopg.rows import tuple_row

log = logging.getLogger(__name__)

SCHEMA = "person"
HALF_TABLE = f"{SCHEMA}.stat_absence_half"
MONTH_TABLE = f"{SCHEMA}.stat_absence_half_month"
MUNI_TABLE = f"{SCHEMA}.stat_absence_half_municipality"
DDL = (
    # per (municipality, scope, employee, half, display scale of a month's contribution): the sum of the
    # contributions (sick days of an employee in the scope in a month) and how many months gave them
    f"""create table if not exists {HALF_TABLE} (
        source text not null,
        municipality_code text not null,
        scope text not null,
        employee_pseudonym text not null,
        half smallint not null,
        dscale integer not null,
        sick_days numeric not null,
        n_months integer not null,
        primary key (source, municipality_code, scope, employee_pseudonym, half, dscale)
    )""",
    # every month of a municipality the state holds: its half (0: the middle month, or a single month) and the
    # deliveries with rows in it (read by their delivery_id index when the month changes half)
    f"""create table if not exists {MONTH_TABLE} (
        source text not null,
        municipality_code text not null,
        month text not null,
        half smallint not null,
        delivery_ids bigint[] not null,
        primary key (source, municipality_code, month)
    )""",
    # the rows the municipality's state was built from: count and part_hash's two hash sums
    f"""create table if not exists {MUNI_TABLE} (
        source text not null,
        municipality_code text not null,
        n bigint not null,
        h0 numeric not null,
        h1 numeric not null,
        updated_at timestamptz not null,
        primary key (source, municipality_code)
    )""",
)


@dataclass
class Outcome:
    """What the last `refresh` did (for the log and the tests)."""
    updated: list[str] = field(default_factory=list)
    rebuilt: list[str] = field(default_factory=list)


#: the outcome of the last refresh, per source
LAST: dict[str, Outcome] = {}


def ensure(conn) -> None:
    """Create the state tables (as the transformer, who owns `person`); a second creator at the same moment
    finds them made."""
    with conn.cursor(row_factory=tuple_row) as cur:
        cur.execute("select to_regclass(%s) is not null and to_regclass(%s) is not null"
                    " and to_regclass(%s) is not null", (HALF_TABLE, MONTH_TABLE, MUNI_TABLE))
        if cur.fetchone()[0]:
            return
        try:
            with conn.transaction():
                cur.execute(f"create schema if not exists {SCHEMA}")
                for ddl in DDL:
                    cur.execute(ddl)
        except (errors.UniqueViolation, errors.DuplicateTable, errors.DuplicateSchema, errors.DuplicateObject):
            log.info("%s: created by another statistics task at the same moment", HALF_TABLE)


def halves(months: Sequence[str]) -> dict[str, int]:
    """month -> 1 (first half), 2 (last half) or 0 (the middle month of an odd count, or a single month):
    absence.split_halves' halves."""
    ordered = sorted(set(months))
    half = len(ordered) // 2
    return {m: 1 if i < half else 2 if i >= len(ordered) - half else 0 for i, m in enumerate(ordered)}


def parse_hash(text: str) -> tuple[int, int, int]:
    """part_hash's 'rows:hash0:hash1' as numbers (the hash sums are integers in numeric)."""
    n, h0, h1 = text.split(":")
    return int(n), int(h0), int(h1)


# The contributions of the rows `rows` (a subquery of the source's rows, with delivery_id) per (municipality,
# scope, employee, month): the sick days of the employee in the unit (or in every unit, for the all-units
# scope) that month, with the sum's display scale. The same grouping as VALUES_SQL's, one month at a time.
CONTRIBUTIONS = """
    select municipality_code::text collate "C" as municipality_code,
           case when grouping(unit_name) = 1 then %(all_units)s collate "C"
                else unit_name::text collate "C" end as scope,
           employee_pseudonym::text collate "C" as employee_pseudonym, month::text collate "C" as month,
           coalesce(sum(sick_days::numeric), 0) as sick_days, coalesce(scale(sum(sick_days::numeric)), 0) as dscale
    from {rows} as r
    group by grouping sets ((municipality_code, month, employee_pseudonym, unit_name),
                            (municipality_code, month, employee_pseudonym))
"""


def _rel(source: str) -> sql.Identifier:
    return sql.Identifier(*source.split(".", 1))


def _row_expression(conn, source: str, columns: Sequence[str]) -> sql.Composable:
    """part_hash's row text: the listed columns the relation has, in their order (scope_state.part_hashes)."""
    schema, name = source.split(".", 1)
    with conn.cursor(row_factory=tuple_row) as cur:
        cur.execute("select column_name::text from information_schema.columns where table_schema = %s"
                    " and table_name = %s", (schema, name))
        present = {r[0] for r in cur.fetchall()}
    return sql.SQL("row({})::text").format(sql.SQL(", ").join(sql.Identifier(c) for c in columns if c in present))


def refresh(conn, source: str, codes: Sequence[str], current: Mapping[str, str], hash_columns: Sequence[str],
            all_units: str, scopes: Sequence[str]) -> Outcome:
    """Bring the state of the municipalities `codes` up to `source`: `current` is each municipality's input
    hash now ('rows:hash0:hash1', from scope_state/part_hash over `hash_columns`), `scopes` every municipality
    the source has (the state of any other is dropped). One transaction; see the module docstring."""
    ensure(conn)
    out = Outcome()
    rel = _rel(source)
    row = _row_expression(conn, source, hash_columns)
    params = {"source": source, "all_units": all_units}
    with conn.transaction(), conn.cursor(row_factory=tuple_row) as cur:
        cur.execute("select pg_advisory_xact_lock(hashtext('trivsel:stat_absence_half:' || %s))", (source,))
        for table in (HALF_TABLE, MONTH_TABLE, MUNI_TABLE):
            cur.execute(f"delete from {table} where source = %s and not (municipality_code = any(%s))",
                        (source, list(scopes)))
        cur.execute(f"select municipality_code, n, h0, h1 from {MUNI_TABLE} where source = %s"
                    " and municipality_code = any(%s)", (source, list(codes)))
        stored = {c: (int(n), int(h0), int(h1)) for c, n, h0, h1 in cur.fetchall()}
        cur.execute(f"select municipality_code, month, half, delivery_ids from {MONTH_TABLE} where source = %s"
                    " and municipality_code = any(%s)", (source, list(stored)))
        months: dict[str, dict[str, tuple[int, list[int]]]] = {c: {} for c in stored}
        for c, m, h, ids in cur.fetchall():
            months[c][m] = (int(h), [int(i) for i in ids])
        rebuild = [c for c in codes if c not in stored]
        candidates = [c for c in codes if c in stored]
        new_rows: dict[str, tuple[tuple[int, int, int], dict[str, list[int]]]] = {}
        if candidates:
            # every delivery any state of the source holds: the deliveries of the municipalities not asked
            # for are held too, so only the rows of deliveries no state has seen are read
            cur.execute(f"select coalesce(array_agg(distinct i), '{{}}') from {MONTH_TABLE}, unnest(delivery_ids) as i"
                        " where source = %s", (source,))
            held = cur.fetchone()[0]
            # the deliveries of the source the states do not hold, by a loose index scan of delivery_id, and
            # what they bring per municipality: the hash of their rows and their months
            cur.execute(sql.SQL("""
                with recursive ids as (
                    select min(delivery_id) as id from {rel}
                    union all
                    select (select min(n.delivery_id) from {rel} as n where n.delivery_id > ids.id)
                    from ids where ids.id is not null
                )
                select r.municipality_code::text, r.month::text, array_agg(distinct r.delivery_id),
                       count(*), sum(hashtextextended({row}, 0)::numeric),
                       sum(hashtextextended({row}, 1)::numeric)
                from {rel} as r
                where r.delivery_id = any(array(select id from ids where id is not null
                                                except select unnest(%(held)s::bigint[])))
                    and r.municipality_code::text = any(%(codes)s)
                group by 1, 2""").format(rel=rel, row=row), {"held": held, "codes": candidates})
            for c, m, ids, n, h0, h1 in cur.fetchall():
                (pn, p0, p1), by_month = new_rows.get(c, ((0, 0, 0), {}))
                by_month[m] = [int(i) for i in ids]
                new_rows[c] = ((pn + int(n), p0 + int(h0), p1 + int(h1)), by_month)
        updates: dict[str, tuple[dict[str, int], dict[str, int], dict[str, list[int]]]] = {}
        for c in candidates:
            (n, h0, h1), by_month = new_rows.get(c, ((0, 0, 0), {}))
            s = stored[c]
            if (s[0] + n, s[1] + h0, s[2] + h1) != parse_hash(current.get(c, "0:0:0")) or set(by_month) & set(months[c]):
                rebuild.append(c)
                continue
            old = {m: h for m, (h, _) in months[c].items()}
            if len(by_month) > len(old):
                # a backfill: more new months than the state holds. The update reads every new month and
                # upserts its sums (plus the months that change half), the rebuild reads every month once
                # with plain inserts: 108 new months on a 12-month state took 216 s to update (bench month
                # 121 @0.1, idle), a first state of 120 months 59 s to build (@0.05, docs/scaling.md). The
                # same sums either way (tests/absence/test_absence_halves.py).
                rebuild.append(c)
                continue
            new = halves([*old, *by_month])
            updates[c] = (old, new, by_month)
        if rebuild:
            _rebuild(cur, rel, row, params, sorted(rebuild))
        if updates:
            _update(cur, rel, row, params, updates, {c: months[c] for c in updates}, new_rows)
        out.rebuilt, out.updated = sorted(rebuild), sorted(updates)
    LAST[source] = out
    log.info("absence halves of %s: %d municipalities updated by their new months, %d rebuilt from every month",
             source, len(out.updated), len(out.rebuilt))
    return out


def _rebuild(cur, rel: sql.Composable, row: sql.Composable, params: dict, codes: list[str]) -> None:
    """The state of `codes` from all their rows (one scan of the source)."""
    for table in (HALF_TABLE, MONTH_TABLE, MUNI_TABLE):
        cur.execute(f"delete from {table} where source = %s and municipality_code = any(%s)",
                    (params["source"], codes))
    rows = sql.SQL("(select * from {} where municipality_code::text = any(%(codes)s))").format(rel)
    cur.execute(sql.SQL("""
        create temporary table stat_absence_month on commit drop as
        select municipality_code::text collate "C" as municipality_code, month::text collate "C" as month,
               array_agg(distinct delivery_id order by delivery_id) as delivery_ids
        from {rows} as r group by 1, 2""").format(rows=rows), {**params, "codes": codes})
    cur.execute("select municipality_code, month from stat_absence_month")
    by_code: dict[str, list[str]] = {}
    for c, m in cur.fetchall():
        by_code.setdefault(c, []).append(m)
    assigned = [(c, m, h) for c, ms in by_code.items() for m, h in halves(ms).items()]
    cur.execute("create temporary table stat_absence_month_half (municipality_code text collate \"C\","
                " month text collate \"C\", half smallint) on commit drop")
    with cur.copy("copy stat_absence_month_half from stdin") as copy:
        for r in assigned:
            copy.write_row(r)
    cur.execute(f"""insert into {MONTH_TABLE} (source, municipality_code, month, half, delivery_ids)
                    select %(source)s, m.municipality_code, m.month, h.half, m.delivery_ids
                    from stat_absence_month as m join stat_absence_month_half as h using (municipality_code, month)
                 """, params)
    cur.execute(sql.SQL(f"""
        insert into {HALF_TABLE} (source, municipality_code, scope, employee_pseudonym, half, dscale, sick_days,
                                  n_months)
        select %(source)s, c.municipality_code, c.scope, c.employee_pseudonym, h.half, c.dscale,
               sum(c.sick_days), count(*)
        from ({CONTRIBUTIONS}) as c
        join stat_absence_month_half as h on h.municipality_code = c.municipality_code and h.month = c.month
        where h.half > 0
        group by 1, 2, 3, 4, 5, 6""").format(rows=rows), {**params, "codes": codes})
    cur.execute(sql.SQL(f"""
        insert into {MUNI_TABLE} (source, municipality_code, n, h0, h1, updated_at)
        select %(source)s, c.code, coalesce(r.n, 0), coalesce(r.h0, 0), coalesce(r.h1, 0), clock_timestamp()
        from unnest(%(codes)s::text[]) as c (code)
        left join (select municipality_code::text as code, count(*) as n,
                          sum(hashtextextended({{row}}, 0)::numeric) as h0,
                          sum(hashtextextended({{row}}, 1)::numeric) as h1
                   from {{rel}} where municipality_code::text = any(%(codes)s) group by 1) as r using (code)
        """).format(row=row, rel=rel), {**params, "codes": codes})
    for t in ("stat_absence_month", "stat_absence_month_half"):
        cur.execute(f"drop table {t}")


def _update(cur, rel: sql.Composable, row: sql.Composable, params: dict,
            updates: Mapping[str, tuple[dict[str, int], dict[str, int], dict[str, list[int]]]],
            months: Mapping[str, dict[str, tuple[int, list[int]]]],
            new_rows: Mapping[str, tuple[tuple[int, int, int], dict[str, list[int]]]]) -> None:
    """Apply the months that moved half (and the new months) to the sums: for each, its contributions removed
    from the half it left and added to the half it joined."""
    # (municipality, month, old half, new half, its deliveries) of every month that changes its contribution
    moves: list[tuple[str, str, int, int, list[int]]] = []
    for c, (old, new, by_month) in updates.items():
        for m, h in new.items():
            if m in by_month:
                moves.append((c, m, 0, h, by_month[m]))
            elif old[m] != h:
                moves.append((c, m, old[m], h, months[c][m][1]))
    cur.execute("create temporary table stat_absence_move (municipality_code text collate \"C\","
                " month text collate \"C\", old_half smallint, new_half smallint, delivery_ids bigint[])"
                " on commit drop")
    with cur.copy("copy stat_absence_move from stdin") as copy:
        for r in moves:
            copy.write_row(r)
    rows = sql.SQL("""(select r.* from {rel} as r
                       join stat_absence_move as mv on mv.municipality_code = r.municipality_code::text
                                                   and mv.month = r.month::text
                       where r.delivery_id = any(array(select unnest(delivery_ids) from stat_absence_move))
                         and r.delivery_id = any(mv.delivery_ids))""").format(rel=rel)
    cur.execute(sql.SQL(f"""
        insert into {HALF_TABLE} as s (source, municipality_code, scope, employee_pseudonym, half, dscale,
                                       sick_days, n_months)
        select %(source)s, d.municipality_code, d.scope, d.employee_pseudonym, d.half, d.dscale,
               sum(d.sick_days), sum(d.n_months)
        from (
            select c.municipality_code, c.scope, c.employee_pseudonym, mv.old_half as half, c.dscale,
                   -c.sick_days as sick_days, -1 as n_months
            from ({CONTRIBUTIONS}) as c
            join stat_absence_move as mv using (municipality_code, month)
            where mv.old_half > 0
            union all
            select c.municipality_code, c.scope, c.employee_pseudonym, mv.new_half, c.dscale, c.sick_days, 1
            from ({CONTRIBUTIONS}) as c
            join stat_absence_move as mv using (municipality_code, month)
            where mv.new_half > 0
        ) as d
        group by 2, 3, 4, 5, 6
        on conflict (source, municipality_code, scope, employee_pseudonym, half, dscale) do update
            set sick_days = s.sick_days + excluded.sick_days, n_months = s.n_months + excluded.n_months
        """).format(rows=rows), params)
    cur.execute(f"delete from {HALF_TABLE} where source = %s and municipality_code = any(%s) and n_months = 0",
                (params["source"], list(updates)))
    cur.execute(f"""insert into {MONTH_TABLE} as t (source, municipality_code, month, half, delivery_ids)
                    select %(source)s, municipality_code, month, new_half, delivery_ids from stat_absence_move
                    on conflict (source, municipality_code, month) do update set half = excluded.half""", params)
    cur.executemany(f"update {MUNI_TABLE} set n = n + %s, h0 = h0 + %s, h1 = h1 + %s,"
                    " updated_at = clock_timestamp() where source = %s and municipality_code = %s",
                    [(*new_rows[c][0], params["source"], c) for c in updates if c in new_rows])
    cur.execute("drop table stat_absence_move")


#: the rows absence.VALUES_SQL gives, from the state: per (municipality, scope, employee) the mean of each half
VALUES_FROM_STATE = f"""
    with labels as (
        select municipality_code,
               min(month) filter (where half = 1) as first_a, max(month) filter (where half = 1) as last_a,
               min(month) filter (where half = 2) as first_b, max(month) filter (where half = 2) as last_b
        from {MONTH_TABLE}
        where source = %(source)s and municipality_code = any(%(codes)s)
        group by municipality_code
        having count(*) filter (where half = 1) > 0
    ),
    employee as (
        select municipality_code collate "C" as municipality_code, scope collate "C" as scope,
               employee_pseudonym collate "C" as employee_pseudonym,
               (sum(sick_days) filter (where half = 1)
                / sum(n_months) filter (where half = 1))::double precision as value_a,
               (sum(sick_days) filter (where half = 2)
                / sum(n_months) filter (where half = 2))::double precision as value_b
        from {HALF_TABLE}
        where source = %(source)s and municipality_code = any(%(codes)s)
        group by municipality_code, scope, employee_pseudonym
    )
    select e.municipality_code, e.scope,
           case when l.first_a = l.last_a then l.first_a else l.first_a || '..' || l.last_a end as baseline_period,
           case when l.first_b = l.last_b then l.first_b else l.first_b || '..' || l.last_b end as followup_period,
           e.value_a, e.value_b
    from employee as e
    join labels as l on l.municipality_code = e.municipality_code
    order by e.municipality_code collate "C", e.scope collate "C", e.employee_pseudonym collate "C"
"""
