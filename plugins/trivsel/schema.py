"""The platform's own tables: audit, quarantine, and the raw tables the schemes declare.

Created idempotently by every run, so a fresh external PostgreSQL needs nothing but a database.
"""

from __future__ import annotations

import hashlib
import re

import psycopg
from psycopg import sql

from trivsel.sources import all_schemes
from trivsel.sources.base import LOAD_COLUMNS, RawTable

#: schema raw's comment, followed by the fingerprint of the definition `ensure` last ran (see _is_current)
SCHEMA_COMMENT = "trivsel raw tables, definition "

SCHEMAS = ("raw", "quarantine", "audit", "staging", "intermediate", "marts", "reporting", "certified")

PLATFORM_DDL = """
-- municipality_code, source and period are null only for an `unroutable` file (under an unknown
-- municipality or source folder, a malformed period folder or a sub-folder), whose place names none of them.
create table if not exists audit.delivery (
    delivery_id       bigserial primary key,
    municipality_code text,
    source            text,
    scheme            text,
    period            text,
    file_name         text not null,
    checksum_sha256   text not null,
    size_bytes        bigint not null,
    archive_path      text not null,
    received_at       timestamptz not null default now(),
    status            text not null constraint delivery_status_check check (status in
                        ('validating', 'loaded', 'quarantined', 'duplicate', 'superseded', 'waiting',
                         'unroutable')),
    reason            text,
    rows_loaded       bigint,
    run_id            text,
    decided_at        timestamptz,
    constraint delivery_routed_check check (status = 'unroutable' or (municipality_code is not null
                                            and source is not null and period is not null))
);
-- A warehouse made before `unroutable` existed: widen the status check and allow the nulls, once.
do $$
begin
    if not exists (select 1 from pg_constraint where conrelid = 'audit.delivery'::regclass
                     and conname = 'delivery_routed_check') then
        alter table audit.delivery drop constraint if exists delivery_status_check;
        alter table audit.delivery add constraint delivery_status_check check (status in
            ('validating', 'loaded', 'quarantined', 'duplicate', 'superseded', 'waiting', 'unroutable'));
        alter table audit.delivery alter column municipality_code drop not null,
            alter column source drop not null, alter column period drop not null;
        alter table audit.delivery add constraint delivery_routed_check check (status = 'unroutable'
            or (municipality_code is not null and source is not null and period is not null));
    end if;
end $$;
create index if not exists delivery_key_idx
    on audit.delivery (municipality_code, source, period, scheme, status);
create index if not exists delivery_checksum_idx on audit.delivery (checksum_sha256);
-- One `loaded` delivery per key, whatever runs at the same moment: a second one fails its transaction
-- instead of being counted twice. A warehouse made before this index keeps its newest loaded version per
-- key and the older ones become `superseded` (the loader's own rule: the latest version is current), once.
do $$
begin
    if to_regclass('audit.delivery_one_loaded_idx') is null then
        update audit.delivery as old set status = 'superseded', decided_at = now(),
               reason = 'superseded by a newer loaded version when one loaded version per key became a rule'
          from audit.delivery as new
         where old.status = 'loaded' and new.status = 'loaded' and new.delivery_id > old.delivery_id
           and new.municipality_code = old.municipality_code and new.source = old.source
           and new.period = old.period and new.scheme = old.scheme;
        create unique index delivery_one_loaded_idx on audit.delivery (municipality_code, source, period, scheme)
            where status = 'loaded';
    end if;
end $$;

create table if not exists audit.period_run (
    period      text not null,
    run_id      text not null,
    started_at  timestamptz not null default now(),
    finished_at timestamptz,
    primary key (period, run_id)
);

-- A run's snapshot of the deliveries, pinned at its gate (loads_done; trivsel.snapshot): the status of every
-- delivery of the warehouse at that moment. The run's dbt models read deliveries through it (dbt var run_id,
-- macro pinned_deliveries), so one run's models are built from one set of deliveries; a delivery committed
-- during the run is picked up by the next run. run_pin marks that the run pinned (an empty snapshot is one).
create table if not exists audit.run_pin (
    run_id      text primary key,
    pinned_at   timestamptz not null default now(),
    deliveries  integer not null,
    loaded      integer not null
);
create table if not exists audit.run_snapshot (
    run_id      text not null references audit.run_pin (run_id) on delete cascade,
    delivery_id bigint not null references audit.delivery (delivery_id),
    status      text not null,
    reason      text,
    decided_at  timestamptz,
    primary key (run_id, delivery_id)
);

-- The build lease (trivsel.build_lease): one run's model phase at a time. One row; holder_run_id null = free.
-- Taken at a run's gate before it pins its snapshot, released by run_outcome (or certify's refusal); a crashed
-- run's lease expires at expires_at (settings.build_lease_minutes). The history keeps who built when.
create table if not exists audit.build_lease (
    lease          boolean primary key default true check (lease),
    holder_run_id  text,
    acquired_at    timestamptz,
    expires_at     timestamptz
);
create table if not exists audit.build_lease_history (
    run_id       text not null,
    acquired_at  timestamptz not null default now(),
    released_at  timestamptz,
    released_by  text
);
create index if not exists build_lease_history_run_idx on audit.build_lease_history (run_id);

-- What each dbt invocation of a run reported (run_results.json), recorded by the Cosmos callback
-- (trivsel.upstream.record_dbt_results): certify reads it instead of assuming the tests passed.
create table if not exists audit.dbt_result (
    run_id        text not null,
    task_id       text not null,
    map_index     integer not null default -1,
    try_number    integer not null default 1,
    unique_id     text not null,
    resource_type text,
    status        text not null,
    failures      bigint,
    message       text,
    recorded_at   timestamptz not null default now(),
    primary key (run_id, task_id, map_index, try_number, unique_id)
);

create table if not exists quarantine.delivery_issue (
    delivery_id  bigint not null references audit.delivery (delivery_id),
    file_name    text not null,
    row_number   integer,
    column_name  text,
    check_name   text not null,
    reason       text not null,
    value        text
);
create index if not exists delivery_issue_delivery_idx on quarantine.delivery_issue (delivery_id);

-- Every version of every delivery: raw keeps a superseded delivery's rows, so its content stays queryable
-- (select * from raw.<table> where delivery_id = <a superseded delivery_id>).
create or replace view audit.delivery_history as
select d.delivery_id, d.municipality_code, d.source, d.scheme, d.period, d.file_name, d.checksum_sha256,
       d.size_bytes, d.archive_path, d.received_at, d.status, d.reason, d.rows_loaded, d.run_id, d.decided_at,
       case when d.status in ('loaded', 'superseded') then
           (select count(*) from audit.delivery v
             where v.municipality_code = d.municipality_code and v.source = d.source and v.period = d.period
               and v.scheme is not distinct from d.scheme and v.status in ('loaded', 'superseded')
               and v.delivery_id <= d.delivery_id) end as version,
       case when d.status = 'superseded' then
           (select min(n.delivery_id) from audit.delivery n
             where n.municipality_code = d.municipality_code and n.source = d.source and n.period = d.period
               and n.scheme is not distinct from d.scheme and n.status in ('loaded', 'superseded')
               and n.delivery_id > d.delivery_id) end as superseded_by,
       (select count(*) from quarantine.delivery_issue i where i.delivery_id = d.delivery_id) as issue_count
  from audit.delivery d;

create table if not exists raw.config_municipality (
    municipality_code text primary key,
    municipality_name text not null
);
create table if not exists raw.config_unit (
    municipality_code text not null,
    unit_name         text not null,
    valid_from        date,
    valid_to          date,
    primary key (municipality_code, unit_name)
);
create table if not exists raw.config_source (
    municipality_code text not null,
    source            text not null,
    cadence           text not null,
    delivers          boolean not null,
    schemes           text,
    primary key (municipality_code, source)
);
alter table raw.config_source add column if not exists due_day integer;
-- Survey rounds (settings.survey_rounds, sources.survey.rounds): which wave month is which round, per municipality.
create table if not exists raw.config_survey_round (
    municipality_code text not null,
    round_name        text not null,
    round_order       integer not null,
    wave              text not null,
    primary key (municipality_code, round_name)
);
-- Scalar settings of config/municipalities.yml (settings.*) that models apply, e.g. minimum_response_rate.
create table if not exists raw.config_setting (
    setting_name  text primary key,
    setting_value text
);
alter table audit.period_run add column if not exists as_of date;

-- What the pull step (trivsel.remote) fetched from a municipality's remote location, by remote path.
create table if not exists audit.remote_file (
    municipality_code text not null,
    source            text not null,
    location          text not null,
    remote_path       text not null,
    period            text not null,
    size_bytes        bigint not null,
    modified_at       timestamptz,
    checksum_sha256   text not null,
    status            text not null check (status in ('pulled', 'unchanged')),
    local_path        text,
    run_id            text,
    pulled_at         timestamptz not null default now(),
    primary key (municipality_code, source, location, remote_path)
);
-- A pull (trivsel.remote) that failed in a run, per municipality and period: the ingest task pulls, then loads
-- the inbox anyway (a remote that is down never stops the load); the municipality's verdict task fails with
-- these errors, so the data team sees them. A later pull of the same run that succeeds deletes its row.
create table if not exists audit.pull_failure (
    run_id            text not null,
    municipality_code text not null,
    period            text not null,
    errors            text[] not null,
    recorded_at       timestamptz not null default now(),
    primary key (run_id, municipality_code, period)
);
-- A (municipality, period) job of an ingest lane (trivsel.lanes) that did not load cleanly in a run: `quarantined`
-- (files that could not be parsed, lines as audit.delivery names them) or `error` (an unexpected error: its class
-- and masked message, never a delivered value). The lane goes on with its next municipality; the municipality's
-- verdict task fails with these lines. A lane's retry deletes its jobs' rows first and records what it finds.
create table if not exists audit.ingest_failure (
    run_id            text not null,
    municipality_code text not null,
    period            text not null,
    kind              text not null check (kind in ('quarantined', 'error')),
    lines             text[] not null,
    recorded_at       timestamptz not null default now(),
    primary key (run_id, municipality_code, period)
);
"""


def raw_table_ddl(table: RawTable) -> sql.Composed:
    cols = [sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(t)) for n, t in LOAD_COLUMNS]
    cols += [sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.type)) for c in table.columns]
    return sql.SQL("create table if not exists raw.{} ({})").format(sql.Identifier(table.name),
                                                                     sql.SQL(", ").join(cols))


def _may_define(conn: psycopg.Connection) -> bool:
    """The platform tables are defined by the bootstrap (a superuser) or by their owner (the loader role):
    true for those, or while schema audit does not exist yet (then whoever calls must be able to)."""
    row = conn.execute(
        """select r.rolsuper or n.nspowner is null or pg_has_role(current_user, n.nspowner, 'USAGE')
             from pg_roles r left join pg_namespace n on n.nspname = 'audit'
            where r.rolname = current_user""").fetchone()
    if isinstance(row, dict):  # a connection with dict rows
        row = tuple(row.values())
    return bool(row and row[0])


def _definition() -> tuple[str, list[str]]:
    """(fingerprint, relations) of everything `ensure` defines: the platform DDL and every scheme's raw table
    with its columns and index. A scheme that grows a column changes the fingerprint."""
    h = hashlib.sha256(PLATFORM_DDL.encode())
    relations = re.findall(r"create (?:unlogged )?table if not exists ([a-z_]+\.[a-z_]+)", PLATFORM_DDL, re.I)
    relations += [f"{schema}.{name}" for name, schema in re.findall(
        r"create (?:unique )?index (?:if not exists )?([a-z_]+)\s+on ([a-z_]+)\.", PLATFORM_DDL, re.I)]
    for module in sorted(all_schemes().values(), key=lambda m: m.scheme.name):
        for table in module.scheme.tables:
            h.update(repr((table.name, LOAD_COLUMNS, [(c.name, c.type) for c in table.columns])).encode())
            relations += [f"raw.{table.name}", f"raw.{table.name}_delivery_idx"]
    return h.hexdigest()[:32], sorted(set(relations))


def _is_current(conn: psycopg.Connection, fingerprint: str, relations: list[str]) -> bool:
    """The warehouse already holds this definition: schema raw carries its fingerprint (set by the last
    `ensure` that ran the DDL) and every relation exists. Reads the catalog only, so it takes no lock."""
    row = conn.execute(
        """select coalesce(obj_description(to_regnamespace('raw'), 'pg_namespace') = %s, false)
                  and bool_and(to_regclass(r) is not null)
             from unnest(%s::text[]) as r""", (SCHEMA_COMMENT + fingerprint, relations)).fetchone()
    if isinstance(row, dict):  # a connection with dict rows
        row = tuple(row.values())
    return bool(row and row[0])


def ensure(conn: psycopg.Connection) -> None:
    """Create schemas, platform tables and every scheme's raw tables (add new columns if a scheme grew).

    Runs its DDL only when the definition changed (or a relation is missing): every ingest task calls this,
    and `alter table ... add column if not exists` takes an ACCESS EXCLUSIVE lock even when the column exists.
    Under the executor two ingests deadlocked on it (one holding audit.delivery and waiting for raw.<t> here,
    the other inside its delivery's transaction holding raw.<t> and waiting for audit.delivery; found by
    `make bench`). The fast path reads the catalog only."""
    if not _may_define(conn):
        return  # a stage that does not own the platform tables (transformer, publisher): the bootstrap made them
    fingerprint, relations = _definition()
    if _is_current(conn, fingerprint, relations):
        return
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext('trivsel:schema'))")
        if _is_current(conn, fingerprint, relations):  # another session defined it while this one waited
            return
        existing = {r[0] for r in conn.execute("select nspname from pg_namespace where nspname = any(%s)",
                                                (list(SCHEMAS),))}
        for s in SCHEMAS:
            if s not in existing:  # CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even if it exists
                conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(s)))
        conn.execute(PLATFORM_DDL)
        for module in all_schemes().values():
            for table in module.scheme.tables:
                conn.execute(raw_table_ddl(table))
                for c in table.columns:
                    conn.execute(sql.SQL("alter table raw.{} add column if not exists {} {}").format(
                        sql.Identifier(table.name), sql.Identifier(c.name), sql.SQL(c.type)))
                conn.execute(sql.SQL("create index if not exists {} on raw.{} (delivery_id)").format(
                    sql.Identifier(f"{table.name}_delivery_idx"), sql.Identifier(table.name)))
        conn.execute(sql.SQL("comment on schema raw is {}").format(sql.Literal(SCHEMA_COMMENT + fingerprint)))
