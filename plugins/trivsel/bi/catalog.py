"""What a BI connection may offer as datasets, and their documentation from the dbt manifest.

The datasets are every table of marts and reporting that the connection's warehouse login may read (grants
and row-level security decide: a municipality login gets the marts tables with its policy, never reporting,
never a person-level table). Descriptions come from the dbt YAML through the manifest (models, and the
statistics' tables declared as sources), so dbt docs and the BI tool have one source.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import psycopg

from trivsel import dbt_manifest, roles

#: the schemas a BI tool reads (person, certified and the loading schemas are not offered)
BI_SCHEMAS = ("marts", "reporting")


@dataclass(frozen=True)
class TableDoc:
    schema: str
    name: str
    description: str = ""
    columns: dict[str, str] = field(default_factory=dict)


def docs() -> dict[tuple[str, str], TableDoc]:
    """{(schema, table): its description and column descriptions}, from the current dbt manifest."""
    dbt_manifest.ensure()
    manifest = json.loads(dbt_manifest.manifest_path().read_text())
    out: dict[tuple[str, str], TableDoc] = {}
    nodes = [n for n in manifest.get("nodes", {}).values() if n.get("resource_type") == "model"]
    for node in [*nodes, *manifest.get("sources", {}).values()]:
        schema = node.get("schema")
        if schema not in BI_SCHEMAS:
            continue
        name = node.get("alias") or node.get("identifier") or node["name"]
        cols = {c: (v.get("description") or "").strip() for c, v in node.get("columns", {}).items()}
        known = out.get((schema, name))
        if known:  # a model and its source declaration: keep every description either gives
            cols = {**cols, **{k: v for k, v in known.columns.items() if v}}
        desc = " ".join((node.get("description") or "").split()) or (known.description if known else "")
        out[(schema, name)] = TableDoc(schema, name, desc, cols)
    # The statistics' reporting tables are declared as sources with their key columns only; the certified
    # model published from each (same alias, same column names) documents the rest: borrowed, never invented.
    certified: dict[str, dict[str, str]] = {}
    for node in sorted(nodes, key=lambda n: str(n.get("version") or "")):
        if node.get("schema") in ("certified", "certified_next"):
            alias = node.get("alias") or node["name"]
            certified[alias] = {c: (v.get("description") or "").strip() for c, v in node.get("columns", {}).items()}
    for (schema, name), doc in list(out.items()):
        if schema == "reporting" and name in certified:
            merged = {**{k: v for k, v in certified[name].items() if v}, **{k: v for k, v in doc.columns.items() if v}}
            out[(schema, name)] = TableDoc(schema, name, doc.description, merged)
    return out


def readable_tables(conn: psycopg.Connection, login: str) -> list[tuple[str, str]]:
    """(schema, table) of marts/reporting that `login` may select from, without a person column."""
    rows = conn.execute(
        """select n.nspname, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
           where n.nspname = any(%s) and c.relkind in ('r', 'p', 'v', 'm')
             and has_schema_privilege(%s, n.oid, 'usage')
             and has_table_privilege(%s, c.oid, 'select')
             and not exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attnum > 0
                             and not a.attisdropped and a.attname = any(%s))
           order by 1, 2""", (list(BI_SCHEMAS), login, login, list(roles.PERSON_COLUMNS))).fetchall()
    return [(r[0], r[1]) for r in rows]
