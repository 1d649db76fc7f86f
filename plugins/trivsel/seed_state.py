"""Seeds rebuilt only when they changed: the dbt_seeds task's decision before it runs dbt (issue 15).

The seeds are code (code maps and reference tables in dbt/seeds), yet the DAG rebuilt all of them every month
with `dbt seed --full-refresh`: a dbt invocation of ~7 s of dbt time at the national month, plus dbt's own
start-up, for tables that had not changed. Now every seed table carries, as its table comment, a stamp made of

  * the fingerprint of what the seeds are built from: every file under dbt/seeds (the CSVs and their YAML), the
    project's macros and dbt_project.yml (schema, column quoting), and the dbt-core/dbt-postgres versions; and
  * an md5 of the table's own rows, taken right after the build.

The task runs dbt only when a seed table is missing, or its stamp differs: another fingerprint (a seed, its
config or dbt changed) or other rows (someone re-seeded or edited the table by hand). A `dbt seed
--full-refresh` drops and recreates the tables, which drops the comments, so a table rebuilt outside the DAG is
never mistaken for one the DAG stamped. The check reads the catalog and ~15 small tables in one query.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

#: the stamp's prefix in the table comment (a comment is free text; the prefix says what wrote it)
STAMP_PREFIX = "trivsel seed stamp "
#: what, besides the seeds folder, decides how a seed is built
PROJECT_INPUTS = ("dbt_project.yml", "macros")
#: the packages whose version changes how a seed is loaded and typed
DBT_PACKAGES = ("dbt-core", "dbt-postgres")


def _files(dbt_dir: Path) -> list[Path]:
    roots = [dbt_dir / "seeds", *(dbt_dir / p for p in PROJECT_INPUTS)]
    found: list[Path] = []
    for root in roots:
        if root.is_file():
            found.append(root)
        elif root.is_dir():
            found += [p for p in root.rglob("*") if p.is_file()]
    return sorted(found)


def fingerprint(dbt_dir: Path) -> str:
    """sha256 of every input of the seeds' build: file paths (relative) and bytes, and the dbt versions."""
    h = hashlib.sha256()
    for path in _files(dbt_dir):
        h.update(path.relative_to(dbt_dir).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    for package in DBT_PACKAGES:
        try:
            version = metadata.version(package)
        except metadata.PackageNotFoundError:
            version = "absent"
        h.update(f"{package}=={version}\0".encode())
    return h.hexdigest()


def seed_relations(manifest: dict[str, Any]) -> list[tuple[str, str]]:
    """(schema, table) of every seed of the dbt manifest, sorted."""
    return sorted((n["schema"], n["alias"] or n["name"]) for n in manifest["nodes"].values()
                  if n["resource_type"] == "seed")


def _content_md5(schema: str, table: str) -> sql.Composed:
    """An md5 of a table's rows (as text, in a fixed order): changes with any edit of its rows."""
    return sql.SQL("(select md5(coalesce(string_agg(t::text, E'\\n' order by t::text), '')) from {}.{} as t)"
                   ).format(sql.Identifier(schema), sql.Identifier(table))


def stamps(conn: psycopg.Connection, relations: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str | None]:
    """The stamp (table comment) each existing seed table carries, None where it has none; a missing table is
    left out. One catalog query."""
    relations = list(relations)
    rows = conn.execute(
        "select r.s, r.t, obj_description(to_regclass(format('%%I.%%I', r.s, r.t)), 'pg_class') "
        "from unnest(%s::text[], %s::text[]) as r (s, t) where to_regclass(format('%%I.%%I', r.s, r.t)) is not null",
        ([s for s, _ in relations], [t for _, t in relations])).fetchall()
    return {(s, t): c for s, t, c in rows}


def expected_stamps(conn: psycopg.Connection, relations: Iterable[tuple[str, str]],
                    fp: str) -> dict[tuple[str, str], str]:
    """The stamp of each existing seed table as it is now: fingerprint plus the md5 of its rows."""
    relations = list(relations)
    if not relations:
        return {}
    query = sql.SQL("select {}").format(sql.SQL(", ").join(_content_md5(s, t) for s, t in relations))
    digests = conn.execute(query).fetchone()
    return {r: f"{STAMP_PREFIX}{fp} rows {d}" for r, d in zip(relations, digests, strict=True)}


def unchanged(conn: psycopg.Connection, relations: Iterable[tuple[str, str]], fp: str) -> bool:
    """True when every seed table exists and carries the stamp of `fp` and of its current rows."""
    relations = list(relations)
    carried = stamps(conn, relations)
    if not relations or len(carried) != len(relations) or any(c is None for c in carried.values()):
        return False
    if any(not c.startswith(f"{STAMP_PREFIX}{fp} ") for c in carried.values()):
        return False  # another fingerprint: no need to read the rows
    return carried == expected_stamps(conn, relations, fp)


def mark(conn: psycopg.Connection, relations: Iterable[tuple[str, str]], fp: str) -> None:
    """Stamp every seed table after a successful build (one transaction)."""
    relations = list(relations)
    with conn.transaction():
        for (schema, table), stamp in expected_stamps(conn, relations, fp).items():
            conn.execute(sql.SQL("comment on table {}.{} is {}").format(
                sql.Identifier(schema), sql.Identifier(table), sql.Literal(stamp)))
