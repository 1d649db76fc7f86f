"""Replace a reporting table with freshly computed results, in one transaction.

Readers see the old results or the new ones, never a half-written table; a first run creates the table.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import astuple, fields


def _value(v):
    # NaN (an undefined test, e.g. no variance) is stored as NULL: "not computable", not a number.
    return None if isinstance(v, float) and math.isnan(v) else v


def replace(conn, table: str, record_type: type, records: Iterable, column_types: dict[str, str],
            primary_key: Sequence[str]) -> int:
    """Create `table` (schema-qualified) if missing, delete its rows and COPY `records` (dataclass instances)."""
    names = [f.name for f in fields(record_type)]
    columns = ", ".join(f"{n} {column_types[n]}" for n in names)
    schema = table.split(".")[0]
    n = 0
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(f"create schema if not exists {schema}")
        # A table of an earlier shape (a column added or renamed) is rebuilt: its rows are replaced anyway.
        cur.execute("select array_agg(column_name::text order by ordinal_position) from information_schema.columns"
                    " where table_schema = %s and table_name = %s", (schema, table.split(".", 1)[1]))
        existing = cur.fetchone()
        existing = existing[0] if not isinstance(existing, dict) else next(iter(existing.values()))
        if existing and list(existing) != names:
            cur.execute(f"drop table {table}")
        cur.execute(f"create table if not exists {table} ({columns}, primary key ({', '.join(primary_key)}))")
        cur.execute(f"delete from {table}")
        with cur.copy(f"copy {table} ({', '.join(names)}) from stdin") as copy:
            for record in records:
                copy.write_row(tuple(_value(v) for v in astuple(record)))
                n += 1
    return n
