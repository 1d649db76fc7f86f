"""The payroll employee test's per-half sums kept in the warehouse (trivsel.stats.absence_halves) give, after
every kind of change, the rows absence.VALUES_SQL computes from every month, bit for bit; and a month that only
adds new months reads those, not the history.

On a database of its own with person.fct_absence_employee_month shaped as dbt builds it (delivery_id with an
index, reference_fingerprint; sick_days = sick_hours / 7.4 in numeric, as int_absence__employee_month computes
it, so its display scale varies with its size as the real one's does). Each test runs in one transaction that is
rolled back (the relation's row counters then include it at once, as part_hash needs).
"""

from __future__ import annotations

import random

import psycopg
import pytest
import throwaway_db
from psycopg.rows import tuple_row

from trivsel.integrity import table_fingerprints
from trivsel.stats import absence, absence_halves, scope_state

SOURCE = absence.SOURCE
CODES = ("101", "202", "303")


@pytest.fixture(scope="module")
def halves_db(warehouse_url):
    url = throwaway_db.create(warehouse_url, "absence_halves", rails=False)
    yield url
    throwaway_db.drop(warehouse_url, "absence_halves")


def _create(conn) -> None:
    conn.execute("create schema if not exists person")
    conn.execute(f"""create table {SOURCE} (
        municipality_code text not null, unit_name text not null, month_start date not null, month text not null,
        employee_pseudonym text not null, contractual_hours numeric, fte numeric, sick_hours numeric not null,
        sick_days numeric not null, other_absence_hours numeric, delivery_id bigint not null,
        reference_fingerprint text not null)""")
    conn.execute(f"create index on {SOURCE} (delivery_id)")


def _month(i: int) -> str:
    return f"{2014 + i // 12}-{i % 12 + 1:02d}"


def _deliver(conn, delivery_id: int, code: str, month: str, seed: int, fingerprint: str = "fp1") -> None:
    """One delivery: a month of `code`'s employees. Some employees come and go, some are in two units, many
    have no sick hours; sick hours of a quarter, a tenth or whole hours give sick days of other scales."""
    rng = random.Random(seed)
    rows = []
    for i in range(40):
        if rng.random() < 0.15:
            continue
        employee = f"{'E' if i % 3 else 'e'}{i:03d}{code}"
        units = ["Køkken", "Kontor", "Pleje"]
        unit = units[i % 3]
        hours = rng.choice(["0", "0", "7.4", "3.25", "14.8", "0.1", "37", "1.75"])
        rows.append((unit, employee, hours))
        if i % 7 == 0:
            rows.append((units[(i + 1) % 3], employee, rng.choice(["0", "7.4", "2.5"])))
    conn.execute("create temporary table if not exists delivery_rows (unit_name text, employee text, hours numeric)")
    conn.execute("truncate delivery_rows")
    with conn.cursor().copy("copy delivery_rows from stdin") as copy:
        for r in rows:
            copy.write_row(r)
    conn.execute(f"""insert into {SOURCE} (municipality_code, unit_name, month_start, month, employee_pseudonym,
                         contractual_hours, fte, sick_hours, sick_days, other_absence_hours, delivery_id,
                         reference_fingerprint)
                     select %s, unit_name, %s::date, %s, employee, 160, 1, hours, hours / 7.4, 0, %s, %s
                     from delivery_rows""", (code, f"{month}-01", month, delivery_id, fingerprint))


def _hashes(conn) -> dict[str, str]:
    return scope_state.part_hashes(conn, absence.input_parts(SOURCE)[0])


def _reference(conn, codes) -> list[tuple]:
    with conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(absence._values_query(SOURCE), {"all_units": absence.ALL_UNITS, "all": False,
                                                    "codes": list(codes)})
        return cur.fetchall()


def _kept(conn, codes, rebuild: bool = False) -> list[tuple]:
    current = _hashes(conn)
    absence_halves.refresh(conn, SOURCE, sorted(current) if rebuild else list(codes), current,
                           absence.input_parts(SOURCE)[0].columns, absence.ALL_UNITS, list(current))
    with conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(absence_halves.VALUES_FROM_STATE, {"source": SOURCE, "codes": list(codes)})
        return cur.fetchall()


def _check(conn, codes=CODES, updated=(), rebuilt=()) -> None:
    got, want = _kept(conn, codes), _reference(conn, codes)
    assert want, "the reference has rows to compare"
    assert got == want  # every value, as Python floats: the same bits
    outcome = absence_halves.LAST[SOURCE]
    assert (outcome.updated, outcome.rebuilt) == (sorted(updated), sorted(rebuilt)), outcome


def test_month_by_month_updates_equal_the_full_computation(halves_db):
    """Twelve months delivered one at a time: after the first two (a first state is built) each month only
    updates the kept sums, and the rows equal VALUES_SQL's every time, odd and even month counts alike."""
    with psycopg.connect(halves_db) as conn:
        _create(conn)
        delivery = 0
        for i in range(12):
            for code in CODES:
                delivery += 1
                _deliver(conn, delivery, code, _month(i), seed=delivery)
            if i == 0:
                continue  # one month: no halves, nothing to compare
            if i == 1:
                _check(conn, rebuilt=CODES)
            else:
                _check(conn, updated=CODES)
        scales = conn.execute(f"select count(distinct dscale) from {absence_halves.HALF_TABLE}").fetchone()[0]
        assert scales >= 2  # the display-scale classes are exercised, not one scale throughout
        conn.rollback()


def test_corrections_late_months_and_edits_rebuild_only_their_municipality(halves_db):
    """A correction (a delivery replaced by another, other values) and a row edited in place each rebuild their own
    municipality's state from every month, the others update; a month delivered late inside the history is an
    update that moves every month whose half it changes."""
    with psycopg.connect(halves_db) as conn:
        _create(conn)
        delivery = 0
        ids: dict[tuple[str, int], int] = {}
        for i in range(6):
            for code in CODES:
                if code == "303" and i == 2:
                    continue  # 303's third month comes late
                delivery += 1
                ids[(code, i)] = delivery
                _deliver(conn, delivery, code, _month(i), seed=delivery)
        _check(conn, rebuilt=CODES)

        # 101's month 3 corrected: its delivery replaced (as dbt's pre-hook does), with other figures
        conn.execute(f"delete from {SOURCE} where delivery_id = %s", (ids[("101", 3)],))
        delivery += 1
        _deliver(conn, delivery, "101", _month(3), seed=999)
        for code in ("202", "303"):
            delivery += 1
            _deliver(conn, delivery, code, _month(6), seed=delivery)
        _check(conn, updated=("202", "303"), rebuilt=("101",))

        # 303's late month 2, inside its history: an update (its later months change half)
        delivery += 1
        _deliver(conn, delivery, "303", _month(2), seed=delivery)
        _check(conn, updated=("303",), codes=("303",))

        # a row of 202 edited in place: the hash says its state no longer holds the rows
        conn.execute(f"""update {SOURCE} set sick_days = sick_days + 1
                         where ctid = (select ctid from {SOURCE} where municipality_code = '202' limit 1)""")
        _check(conn, rebuilt=("202",), codes=("202",))

        # a new month for all: everyone updates again
        for code in CODES:
            delivery += 1
            _deliver(conn, delivery, code, _month(7), seed=delivery)
        _check(conn, updated=CODES)
        conn.rollback()


def test_a_backfill_of_more_months_than_the_state_holds_rebuilds(halves_db):
    """A municipality that delivers more new months at once than its state holds (a backfill) is rebuilt from
    every month, one scan instead of the moves; one that adds fewer months than it holds is updated; both equal
    VALUES_SQL's rows."""
    with psycopg.connect(halves_db) as conn:
        _create(conn)
        delivery = 0
        for i in range(3):
            for code in CODES:
                delivery += 1
                _deliver(conn, delivery, code, _month(i), seed=delivery)
        _check(conn, rebuilt=CODES)
        # 101: four new months on a three-month state (a backfill); 202: three (as many as it holds: an
        # update); 303: one
        for code, n in (("101", 4), ("202", 3), ("303", 1)):
            for i in range(3, 3 + n):
                delivery += 1
                _deliver(conn, delivery, code, _month(i), seed=delivery)
        _check(conn, updated=("202", "303"), rebuilt=("101",))
        conn.rollback()


def test_run_keeps_the_halves_and_equals_a_full_recompute(halves_db):
    """absence.run: the table written month by month from the kept sums equals a full recompute's and the
    reference path's (VALUES_SQL over every month), and the incremental run took the kept path."""
    def table(conn) -> list[tuple]:
        return conn.execute(f"select * from {absence.TABLE} order by 1, 2, 3, 4, 5").fetchall()

    with psycopg.connect(halves_db) as conn:
        _create(conn)
        delivery = 0
        for i in range(5):
            for code in CODES:
                delivery += 1
                _deliver(conn, delivery, code, _month(i), seed=delivery)
            absence.run(conn, run_id=f"month {i}")
        assert absence_halves.LAST[SOURCE].updated == sorted(CODES)
        kept = table(conn)
        assert kept
        absence.run(conn, full=True, run_id="full")
        assert absence_halves.LAST[SOURCE].rebuilt == sorted(CODES)
        assert table(conn) == kept
        # and the reference path's tests (VALUES_SQL over every month), field by field
        reference = [tuple(vars(t).values()) for t in absence.sql_employee_tests(conn, SOURCE)]
        assert sorted(kept) == sorted(reference)
        # a cache, not content: it is not in the warehouse's fingerprint (its update times differ by path)
        prints = table_fingerprints(conn, ("person",))
        assert SOURCE in prints
        assert not {absence_halves.HALF_TABLE, absence_halves.MONTH_TABLE, absence_halves.MUNI_TABLE} & set(prints)
        conn.rollback()


@pytest.mark.parametrize("months", [[], ["2014-01"], ["2014-01", "2014-02"], [f"2014-{m:02d}" for m in range(1, 8)]])
def test_halves_are_split_halves(months):
    got = absence_halves.halves(months)
    base, follow = absence.split_halves(months)
    assert {m for m, h in got.items() if h == 1} == set(base)
    assert {m for m, h in got.items() if h == 2} == set(follow)
    assert {m for m, h in got.items() if h == 0} == set(months) - set(base) - set(follow)


def test_a_sum_keeps_the_display_scale_of_the_months_left_in_its_half(halves_db):
    """The sum of a half is the same numeric as VALUES_SQL's, display scale included: here the month that
    leaves the last half (0.1 sick hours: sick days with 20 decimals) was the only one of its scale, and the
    mean of the three left (8, 12.25 and 12.25 hours: 16 decimals) differs in its last bit if the sum keeps the
    20 decimals (PostgreSQL's numeric division takes its digits from the operands' scales)."""
    hours = ["7.4", "7.4", "7.4", "0.1", "8.00", "12.25", "12.25"]
    with psycopg.connect(halves_db) as conn:
        _create(conn)
        for i, h in enumerate(hours):
            conn.execute(f"""insert into {SOURCE} (municipality_code, unit_name, month_start, month,
                                 employee_pseudonym, sick_hours, sick_days, delivery_id, reference_fingerprint)
                             values ('909', 'Køkken', %s::date, %s, 'E909', %s::numeric, %s::numeric / 7.4, %s,
                                     'fp1')""", (f"{_month(i)}-01", _month(i), h, h, i + 1))
            if i == 5:
                _check(conn, codes=("909",), rebuilt=("909",))
        _check(conn, codes=("909",), updated=("909",))
        scales = conn.execute(f"select dscale"
                               f" from {absence_halves.HALF_TABLE} where half = 2").fetchall()
        assert scales == [(16,), (16,)]  # the unit's and the all-units scope's: the 20-decimal class is gone
        conn.rollback()
