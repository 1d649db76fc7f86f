"""Replace a reporting table with freshly computed results, in one transaction: the whole table
(`replace`) or only the scopes a run recomputed (`replace_scopes`, trivsel.stats.scope_state).

Readers see the old results or the new ones, never a half-written table; a first run creates the table.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import astuple, fields


def _value(v):
    # NaN (an undefined test, e.g. no variance) is stored as NULL: "not computable", not a number.
    return None if isinstance(v, float) and math.isnan(v) else v


def names_of(record_type: type) -> list[str]:
    return [f.name for f in fields(record_type)]


def existing_columns(cur, table: str) -> list[str]:
    """The table's columns in order ([] when it does not exist)."""
    schema, name = table.split(".", 1)
    cur.execute("select array_agg(column_name::text order by ordinal_position) from information_schema.columns"
                " where table_schema = %s and table_name = %s", (schema, name))
    row = cur.fetchone()
    value = row[0] if not isinstance(row, dict) else next(iter(row.values()))
    return list(value or [])


def has_shape(conn, table: str, record_type: type) -> bool:
    """True when `table` exists with exactly the record type's columns: only then can a run keep its rows of
    scopes it does not recompute (a table of another shape is rebuilt whole)."""
    with conn.cursor() as cur:
        return existing_columns(cur, table) == names_of(record_type)


def _prepare(cur, table: str, names: list[str], column_types: dict[str, str], primary_key: Sequence[str]) -> None:
    schema = table.split(".")[0]
    cur.execute(f"create schema if not exists {schema}")
    # A table of an earlier shape (a column added or renamed) is rebuilt: its rows are replaced anyway.
    existing = existing_columns(cur, table)
    if existing and existing != names:
        cur.execute(f"drop table {table}")
    columns = ", ".join(f"{n} {column_types[n]}" for n in names)
    cur.execute(f"create table if not exists {table} ({columns}, primary key ({', '.join(primary_key)}))")


def _copy(cur, table: str, names: list[str], records: Iterable) -> int:
    n = 0
    with cur.copy(f"copy {table} ({', '.join(names)}) from stdin") as copy:
        for record in records:
            copy.write_row(tuple(_value(v) for v in astuple(record)))
            n += 1
    return n


def replace(conn, table: str, record_type: type, records: Iterable, column_types: dict[str, str],
            primary_key: Sequence[str]) -> int:
    """Create `table` (schema-qualified) if missing, delete its rows and COPY `records` (dataclass instances)."""
    names = names_of(record_type)
    with conn.transaction(), conn.cursor() as cur:
        _prepare(cur, table, names, column_types, primary_key)
        cur.execute(f"delete from {table}")
        return _copy(cur, table, names, records)


def replace_scopes(cur, table: str, record_type: type, records: Iterable, column_types: dict[str, str],
                   primary_key: Sequence[str], scope_column: str, recomputed: Sequence[str] | None,
                   current: Sequence[str]) -> int:
    """Inside the caller's transaction: delete the rows of the `recomputed` scopes (all rows when None) and of
    every scope not `current` any more, then COPY `records` (the recomputed scopes' new rows)."""
    names = names_of(record_type)
    _prepare(cur, table, names, column_types, primary_key)
    if recomputed is None:
        cur.execute(f"delete from {table}")
    else:
        cur.execute(f"delete from {table} where {scope_column} = any(%s) or not ({scope_column} = any(%s))",
                    (list(recomputed), list(current)))
    return _copy(cur, table, names, records)
