"""A statistic's input hash kept per delivery (trivsel.stats.part_hash) gives, after every kind of change, the
text a scan of every row gives (trivsel.stats.scope_state.scan_hashes), and hashes only the new deliveries
when nothing but whole deliveries came and went.

On a database of its own with a relation shaped as the incremental-by-delivery facts (delivery_id with an
index, reference_fingerprint). Each test runs in one transaction that is rolled back: the relation's row
counters then include the transaction's own changes at once (pg_stat_get_xact_*), as the pipeline's
statistics task sees dbt's committed ones.
"""

from __future__ import annotations

import psycopg
import pytest
import throwaway_db
from psycopg import sql

from trivsel.stats import part_hash, scope_state

RELATION = "person.fct_fake"
PART = scope_state.Part(RELATION, ("unit_name", "value", "flag"), "flag", delivery_column="delivery_id")


@pytest.fixture(scope="module")
def hash_db(warehouse_url):
    url = throwaway_db.create(warehouse_url, "stat_part_hash", rails=False)
    yield url
    throwaway_db.drop(warehouse_url, "stat_part_hash")


def _create(conn, index: bool = True) -> None:
    conn.execute(f"""create table {RELATION} (municipality_code text not null, unit_name text not null,
                     value numeric not null, flag boolean not null, delivery_id bigint not null,
                     reference_fingerprint text not null)""")
    if index:
        conn.execute(f"create index on {RELATION} (delivery_id)")


def _deliver(conn, delivery_id: int, code: str, n: int, fingerprint: str = "fp1", flag: bool | None = None) -> None:
    """n rows of one delivery of municipality `code`; every third not counted (flag false) unless `flag`."""
    with conn.cursor().copy(f"copy {RELATION} from stdin") as copy:
        for i in range(n):
            copy.write_row((code, f"unit {i % 4}", f"{delivery_id}.{i}", (i % 3 != 0) if flag is None else flag,
                            delivery_id, fingerprint))


def _scan(conn) -> dict[str, str]:
    columns = list(PART.columns)
    row = sql.SQL("row({})::text").format(sql.SQL(", ").join(sql.Identifier(c) for c in columns))
    return scope_state.scan_hashes(conn, PART, row)


def _check(conn, how: str, hashed: int | None = None, forgotten: int = 0) -> dict[str, str]:
    got = scope_state.part_hashes(conn, PART)
    assert got == _scan(conn)
    outcome = part_hash.LAST[RELATION]
    assert outcome.how.startswith(how), outcome
    if hashed is not None:
        assert (outcome.hashed_deliveries, outcome.forgotten_deliveries) == (hashed, forgotten), outcome
    return got


@pytest.fixture()
def conn(hash_db):
    with psycopg.connect(hash_db) as c:  # one transaction, rolled back
        c.execute("create schema if not exists person")
        _create(c)
        for d, code in ((1, "101"), (2, "202"), (3, "101"), (4, "303")):
            _deliver(c, d, code, 30 + d)
        yield c
        c.rollback()


def test_first_run_scans_then_only_new_deliveries_are_hashed(conn):
    first = _check(conn, "full scan (first run)", hashed=4)
    assert set(first) == {"101", "202", "303"}
    assert _check(conn, "cached", hashed=0) == first  # nothing new: nothing read but the index
    _deliver(conn, 5, "202", 17)
    after = _check(conn, "cached", hashed=1)
    assert after["202"] != first["202"] and after["101"] == first["101"]


def test_whole_deliveries_that_go_or_are_replaced(conn):
    _check(conn, "full scan")
    conn.execute(f"delete from {RELATION} where delivery_id = 4")  # superseded: dbt's pre-hook
    assert "303" not in _check(conn, "cached", hashed=0, forgotten=1)
    conn.execute(f"delete from {RELATION} where delivery_id = 2")  # other reference data: again, new print
    _deliver(conn, 2, "202", 32, fingerprint="fp2")
    _check(conn, "cached", hashed=1, forgotten=1)


def test_a_delivery_with_nothing_counted(conn):
    _check(conn, "full scan")
    _deliver(conn, 6, "404", 5, flag=False)  # rows, none of which the part counts
    assert "404" not in _check(conn, "cached", hashed=1)
    assert _check(conn, "cached", hashed=0) == _scan(conn)


@pytest.mark.parametrize("change, why", [
    (f"update {RELATION} set value = value + 1 where delivery_id = 1 and unit_name = 'unit 1'",
     "full scan (rows were updated in place)"),
    (f"delete from {RELATION} where delivery_id = 3 and unit_name = 'unit 2'",
     "full scan (rows were deleted other than whole deliveries)"),
    (f"insert into {RELATION} select municipality_code, unit_name, value + 1000, flag, delivery_id,"
     f" reference_fingerprint from {RELATION} where delivery_id = 1 and unit_name = 'unit 0'",
     "full scan (rows were inserted other than whole deliveries)"),
])
def test_anything_but_whole_deliveries_rescans(conn, change, why):
    before = _check(conn, "full scan")
    assert conn.execute(change).rowcount > 0
    after = _check(conn, why, hashed=4)
    assert after != before
    _check(conn, "cached", hashed=0)  # and the cache starts again from that scan


def test_a_rebuilt_relation_rescans(conn):
    _check(conn, "full scan")
    rows = conn.execute(f"select * from {RELATION}").fetchall()
    conn.execute(f"drop table {RELATION}")  # a dbt full refresh: a new relation with the same rows
    _create(conn)
    with conn.cursor().copy(f"copy {RELATION} from stdin") as copy:
        for r in rows:
            copy.write_row(r)
    _check(conn, "full scan (the relation was rebuilt)", hashed=4)
    conn.execute(f"truncate {RELATION}")  # (in place here: the table is this transaction's own)
    _deliver(conn, 9, "101", 3)
    assert set(_check(conn, "full scan", hashed=1)) == {"101"}


def test_a_relation_without_a_delivery_index_is_scanned(conn):
    conn.execute(f"drop table {RELATION}")
    _create(conn, index=False)
    _deliver(conn, 1, "101", 10)
    part_hash.LAST.pop(RELATION, None)
    assert scope_state.part_hashes(conn, PART) == _scan(conn)
    assert RELATION not in part_hash.LAST  # the cache was not used


def test_rescan_asked_for(conn):
    _check(conn, "full scan")
    assert scope_state.part_hashes(conn, PART, rescan=True) == _scan(conn)
    assert part_hash.LAST[RELATION].how == "full scan (asked for)"


def test_the_cache_is_not_part_of_the_warehouse_fingerprint(conn):
    """The cache's rows depend on the path the warehouse took (trivsel.integrity.BOOKKEEPING_TABLES); the
    facts they summarise are fingerprinted, so a change of the facts still shows and a stale cache does not."""
    from trivsel.integrity import differences, table_fingerprints

    _check(conn, "full scan")
    before = table_fingerprints(conn, ("person",))
    assert RELATION in before
    assert not {part_hash.HASH_TABLE, part_hash.RELATION_TABLE} & set(before)
    conn.execute(f"update {part_hash.HASH_TABLE} set h0 = h0 + 1")  # a cache left stale
    assert differences(before, table_fingerprints(conn, ("person",))) == []
    conn.execute(f"update {RELATION} set value = value + 1 where delivery_id = 1")
    assert differences(before, table_fingerprints(conn, ("person",))) != []
    _check(conn, "full scan (rows were updated in place)")  # and its next use rescans
