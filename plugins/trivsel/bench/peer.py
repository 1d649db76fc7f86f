"""The naive peer of issue 15: pandas `read_csv` + `DataFrame.to_sql` of the same files, checking nothing.

What a team without a pipeline would write: each file read as delivered (its delimiter and encoding, every
column text, no reshape, no pseudonym), appended with `to_sql`'s default method (an INSERT executemany over an
SQLAlchemy engine on psycopg 3) into UNLOGGED tables of a scratch schema, dropped afterwards. trivsel's
(load + validate) must beat it: the checks and the reshape are worth paying for, not at any price.
"""

from __future__ import annotations

import time
from pathlib import Path

SCHEMA = "bench_peer"


def _shape(path: Path) -> tuple[str, str]:
    """(pandas encoding, header line) of a generated delivery: the payroll is cp1252, the rest UTF-8."""
    encoding = "cp1252" if path.name.startswith("fravaer_") else "utf-8-sig"
    with path.open("r", encoding=encoding, newline="") as fh:
        return encoding, fh.readline().rstrip("\r\n")


def run(files: list[Path], url: str) -> dict:
    import pandas as pd
    import psycopg
    from psycopg import sql
    from sqlalchemy import create_engine

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"drop schema if exists {SCHEMA} cascade; create schema {SCHEMA}")
        tables: dict[str, str] = {}
        shapes = {}
        for p in files:
            enc, header = _shape(p)
            if header not in tables:
                tables[header] = f"t{len(tables)}"
                cols = header.split(";")
                conn.execute(sql.SQL("create unlogged table {} ({})").format(
                    sql.Identifier(SCHEMA, tables[header]),
                    sql.SQL(", ").join(sql.SQL("{} text").format(sql.Identifier(c)) for c in cols)))
            shapes[p] = (enc, tables[header])
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    rows = 0
    try:
        started = time.perf_counter()
        for p in files:
            enc, table = shapes[p]
            df = pd.read_csv(p, sep=";", encoding=enc, dtype=str, keep_default_na=False)
            df.to_sql(table, engine, schema=SCHEMA, if_exists="append", index=False)
            rows += len(df)
        seconds = time.perf_counter() - started
    finally:
        engine.dispose()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"drop schema if exists {SCHEMA} cascade")
    return {"seconds": round(seconds, 3), "rows": rows, "files": len(files),
            "rows_per_s": round(rows / seconds) if seconds else None}
