"""Database roles and row-level security, created and granted idempotently (embedded or external PostgreSQL).

    loader              ingest logs in as it; owns and writes raw, quarantine and audit
    transformer         dbt and the statistics log in as it; reads raw and audit, owns and builds staging,
                        intermediate, person, marts, reporting and seeds
    publisher           certification logs in as it; reads what the certified models read (intermediate,
                        person, marts, reporting, seeds, audit), owns and swaps certified; never raw
    bi_reader           reads marts, reporting and certified (aggregates; never a person-level relation)
    evaluator           reads certified only; denied everywhere else
    municipality_<code> reads a marts relation only if it has the row-level policy on municipality_code
                        (then only its own municipality's rows) or is listed in NON_SENSITIVE; denied
                        everything else (default-deny)

Person-level relations (one row per employee-month or per respondent-answer: a pseudonym or respondent key)
live in schema `person` (PERSON_SCHEMA), which only the transformer reads: the statistics read them there
and write aggregates to reporting. A relation in any reader schema that carries a person column
(PERSON_COLUMNS) is closed to every reader role as well, wherever it is built. docs/roles.md explains the
rule to a municipality's data-protection officer.

The stage roles (warehouse.STAGE_ROLES: loader, transformer, publisher, evaluator) are LOGIN roles: each
pipeline stage connects as its own (warehouse.connect(role=...)); the superuser is for this bootstrap only.
In the embedded warehouse each gets a generated password (.local/pg/<role>.password, mode 0600), set here;
an external warehouse takes TRIVSEL_<ROLE>_PASSWORD (or a DBA sets it). Every table is owned by the stage
role that builds it (OWNERS, re-asserted by apply()), never by a superuser. The other roles are group roles
(NOLOGIN): grant them to login users (`grant evaluator to alice`). Membership counts, not the login name: a
user in municipality_607 sees 607's rows, a member of bi_reader all rows.

dbt's table materialization recreates a table on every build, which drops its grants and policies. So the
grants and the policy of a marts/reporting/person table are (re)applied by `audit.trivsel_secure_table(schema,
table)`, which this module installs and dbt calls in a post-hook of every marts and reporting model
(macro trivsel_secure): a freshly built table is readable by a municipality role only once its policy is
on, in the same transaction; a table that gets no policy and is not listed gets no municipality grant.
`apply()` runs in the DAG's plan step and as `trivsel roles apply`.
"""

from __future__ import annotations

import logging
import time

import psycopg
from psycopg import sql

from trivsel import schema as platform_schema
from trivsel import warehouse
from trivsel.config import Config, load_config

log = logging.getLogger(__name__)

LOADER, TRANSFORMER, BI_READER, EVALUATOR = "loader", "transformer", "bi_reader", "evaluator"
PUBLISHER = "publisher"
STATIC_ROLES = (LOADER, TRANSFORMER, PUBLISHER, BI_READER, EVALUATOR)
#: Roles a pipeline stage logs in as (LOGIN, with a password); the others are group roles.
LOGIN_ROLES = warehouse.STAGE_ROLES
LOADER_SCHEMAS = ("raw", "quarantine", "audit")
PERSON_SCHEMA = "person"
BUILD_SCHEMAS = ("staging", "intermediate", PERSON_SCHEMA, "marts", "reporting", "certified", "seeds")
READER_SCHEMAS = ("marts", "reporting", "certified")
#: schemas no reader role (bi_reader, evaluator, municipality_<code>) may use at all
#: Great Expectations' schema of per-delivery views of raw (trivsel.validation.GX_SCHEMA), the loader's
GX_SCHEMA = "gx"
CLOSED_SCHEMAS = (*("raw", "quarantine", "audit"), "staging", "intermediate", PERSON_SCHEMA, "seeds", GX_SCHEMA)
CERTIFIED = "certified"
POLICY = "trivsel_municipality"
#: The one list of marts relations a municipality role may read without a row-level policy: dimensions that
#: hold no figure and no person (names of the municipalities, the questionnaire's items). Every other marts
#: relation is readable by a municipality role only through its policy on municipality_code.
NON_SENSITIVE = ("dim_municipality", "dim_survey_item")
#: Who owns each schema and everything in it: the stage that writes it. No superuser owns a table.
OWNERS: dict[str, str] = {
    **{s: LOADER for s in LOADER_SCHEMAS},
    GX_SCHEMA: LOADER,  # Great Expectations' per-delivery views of raw (trivsel.validation)
    **{s: TRANSFORMER for s in ("staging", "intermediate", PERSON_SCHEMA, "marts", "reporting", "seeds",
                                "dbt_test__audit")},
    CERTIFIED: PUBLISHER, "certified_next": PUBLISHER,
}
#: What the publisher reads to certify: the certified models' inputs and the deliveries' audit trail.
PUBLISHER_READS = ("audit", "quarantine", "intermediate", PERSON_SCHEMA, "marts", "reporting", "seeds")
#: The person-level tables the publisher reads: those a certified model is computed from. None since the
#: certified answer distribution sums intermediate.int_survey_answer_counts (it read fct_survey_answer):
#: every person table is closed to it; a certified model that needs one names it here.
PUBLISHER_PERSON_TABLES: tuple[str, ...] = ()
#: The quality gate (run as transformer) holds a delivery: it may change these columns of audit.delivery,
#: and of the run's pinned snapshot (audit.run_snapshot, trivsel.snapshot).
TRANSFORMER_DELIVERY_COLUMNS = ("status", "reason", "decided_at")
TRANSFORMER_UPDATES = ("delivery", "run_snapshot")
#: audit tables the dbt stage writes (as transformer, insert or upsert): its own run results, read by certify
TRANSFORMER_INSERTS = ("dbt_result",)
#: A relation with one of these columns holds one row per person: never granted to a reader role.
PERSON_COLUMNS = ("employee_pseudonym", "respondent_key", "respondent_id")
#: person-level models that lived in marts before PERSON_SCHEMA: a leftover copy is dropped by apply()
LEGACY_PERSON_TABLES = ("fct_absence_employee_month", "fct_survey_answer")


def municipality_role(code: str) -> str:
    return f"municipality_{code}"


def _sql_array(values: tuple[str, ...]) -> str:
    return "array[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]::text[]"


# Runs as the table's owner (the dbt user) from a post-hook, or from apply(). Default-deny: every reader
# grant is first revoked, then given back only where the rule allows it.
SECURE_FUNCTION = r"""
create or replace function audit.trivsel_secure_table(p_schema text, p_table text) returns void
language plpgsql as $fn$
declare
    r record;
    rel regclass := to_regclass(format('%I.%I', p_schema, p_table));
    kind "char";
    person_level boolean;
    policed boolean := false;
begin
    if rel is null then
        return;
    end if;
    select relkind into kind from pg_class where oid = rel;
    person_level := p_schema = '@PERSON_SCHEMA@' or exists (
        select 1 from pg_attribute
        where attrelid = rel and attnum > 0 and not attisdropped and attname::text = any (@PERSON_COLUMNS@));
    for r in select rolname from pg_roles
             where rolname in ('bi_reader', 'evaluator') or rolname like 'municipality\_%' loop
        execute format('revoke all on %s from %I', rel, r.rolname);
    end loop;
    if person_level then
        -- one row per person: the transformer reads it (schema grants), no reader role ever does; the
        -- publisher only the person tables a certified model is computed from (PUBLISHER_PERSON_TABLES)
        if exists (select 1 from pg_roles where rolname = 'publisher') then
            if p_schema = '@PERSON_SCHEMA@' and p_table = any (@PUBLISHER_PERSON_TABLES@) then
                execute format('grant select on %s to publisher', rel);
            else
                execute format('revoke all on %s from publisher', rel);
            end if;
        end if;
        return;
    end if;
    if p_schema in ('marts', 'reporting', 'certified')
            and exists (select 1 from pg_roles where rolname = 'bi_reader') then
        execute format('grant select on %s to bi_reader', rel);
    end if;
    if p_schema = 'certified' and exists (select 1 from pg_roles where rolname = 'evaluator') then
        execute format('grant select on %s to evaluator', rel);
    end if;
    if p_schema <> 'marts' then
        return;
    end if;
    if kind in ('r', 'p') and exists (select 1 from pg_attribute where attrelid = rel and attnum > 0
                                      and not attisdropped and attname = 'municipality_code') then
        execute format('alter table %s enable row level security', rel);
        execute format('drop policy if exists trivsel_municipality on %s', rel);
        -- Members of bi_reader, transformer or publisher (certification builds from every municipality's
        -- rows) see every row; a member of municipality_<code> the rows of <code>; anyone else nothing (the
        -- owner and superusers bypass row-level security).
        execute format($p$
            create policy trivsel_municipality on %s for select using (
                pg_has_role(current_user, 'bi_reader', 'MEMBER')
                or pg_has_role(current_user, 'transformer', 'MEMBER')
                or (exists (select 1 from pg_roles where rolname = 'publisher')
                    and pg_has_role(current_user, 'publisher', 'MEMBER'))
                or municipality_code::text = any (array(
                    select substr(rolname, 14) from pg_roles
                    where rolname like 'municipality\_%%' and pg_has_role(current_user, oid, 'MEMBER')))
            )$p$, rel);
        policed := true;
    end if;
    if not (policed or p_table = any (@NON_SENSITIVE@)) then
        -- no policy and not listed: closed to the municipality roles (fails closed)
        return;
    end if;
    for r in select rolname from pg_roles where rolname like 'municipality\_%' loop
        execute format('grant select on %s to %I', rel, r.rolname);
    end loop;
end
$fn$;
""".replace("@PERSON_SCHEMA@", PERSON_SCHEMA).replace("@PERSON_COLUMNS@", _sql_array(PERSON_COLUMNS)) \
    .replace("@NON_SENSITIVE@", _sql_array(NON_SENSITIVE)) \
    .replace("@PUBLISHER_PERSON_TABLES@", _sql_array(PUBLISHER_PERSON_TABLES))


def _create_role(conn: psycopg.Connection, name: str) -> bool:
    exists = conn.execute("select 1 from pg_roles where rolname = %s", (name,)).fetchone()
    if exists:
        return False
    try:
        with conn.transaction():
            conn.execute(sql.SQL("create role {} nologin").format(sql.Identifier(name)))
    except psycopg.errors.DuplicateObject:  # created concurrently
        return False
    return True


def _tables(conn, schema: str) -> list[str]:
    """Every table, view and materialized view of `schema` (a view is secured like a table: default-deny)."""
    return [r[0] for r in conn.execute(
        """select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
           where n.nspname = %s and c.relkind in ('r', 'p', 'v', 'm', 'f') order by c.relname""", (schema,))]


def _person_level(conn, schema: str) -> list[str]:
    """Relations of `schema` with a person column (PERSON_COLUMNS): never readable by a reader role."""
    return [r[0] for r in conn.execute(
        """select distinct c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
           join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
           where n.nspname = %s and a.attname = any(%s) order by c.relname""", (schema, list(PERSON_COLUMNS)))]


def _schemas(conn) -> set[str]:
    return {r[0] for r in conn.execute("select nspname from pg_namespace")}


def grant_reader_schema(conn, schema: str) -> None:
    """bi_reader (and, for certified, evaluator) may read every table of `schema`: used by apply() and by
    the certify step on certified_next just before it becomes certified. The transformer reads certified too
    (it reads every schema it builds); the swap into certified would otherwise leave it without a grant."""
    q = sql.Identifier(schema)
    certified = schema in (CERTIFIED, "certified_next")
    if certified:
        t = sql.Identifier(TRANSFORMER)
        conn.execute(sql.SQL("grant usage on schema {} to {}").format(q, t))
        conn.execute(sql.SQL("grant select on all tables in schema {} to {}").format(q, t))
    readers = [BI_READER] + ([EVALUATOR] if certified else [])
    for role in readers:
        r = sql.Identifier(role)
        conn.execute(sql.SQL("grant usage on schema {} to {}").format(q, r))
        conn.execute(sql.SQL("grant select on all tables in schema {} to {}").format(q, r))
        for table in _person_level(conn, schema):
            conn.execute(sql.SQL("revoke all on {}.{} from {}").format(q, sql.Identifier(table), r))


def _set_logins(conn) -> None:
    """The stage roles log in: LOGIN, and the password of warehouse.role_password (embedded: generated once
    into .local/pg/<role>.password; external: TRIVSEL_<ROLE>_PASSWORD if given, else left to the DBA)."""
    for role in LOGIN_ROLES:
        pw = warehouse.role_password(role, create=not warehouse.is_external())
        if pw is None:
            conn.execute(sql.SQL("alter role {} login").format(sql.Identifier(role)))
        else:
            conn.execute(sql.SQL("alter role {} login password {}").format(sql.Identifier(role), sql.Literal(pw)))


def _default_grant(conn, owners: tuple[str, ...], schema: str, privileges: str, on: str, grantee: str) -> None:
    """ALTER DEFAULT PRIVILEGES for every role that creates objects in `schema` (its stage owner and the
    bootstrap login), so a table made later is readable at once by whoever reads that schema."""
    for owner in dict.fromkeys(owners):
        conn.execute(sql.SQL("alter default privileges for role {} in schema {} grant " + privileges + " on "
                             + on + " to {}").format(sql.Identifier(owner), sql.Identifier(schema),
                                                     sql.Identifier(grantee)))


_RELKIND_ALTER = {"r": "table", "p": "table", "f": "foreign table", "v": "view", "m": "materialized view",
                  "S": "sequence"}


def assign_owners(conn) -> list[str]:
    """Give every schema of OWNERS, and every relation and function in it, to its stage role (a relation a
    superuser made at bootstrap, or a warehouse from before stage roles). Returns what changed."""
    changed: list[str] = []
    existing = _schemas(conn)
    for schema_name, owner in OWNERS.items():
        if schema_name not in existing:
            continue
        o = sql.Identifier(owner)
        conn.execute(sql.SQL("alter schema {} owner to {}").format(sql.Identifier(schema_name), o))
        rows = conn.execute(
            """select c.relname, c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace
               where n.nspname = %s and c.relkind in ('r', 'p', 'f', 'v', 'm', 'S')
                 and pg_get_userbyid(c.relowner) <> %s
                 -- a sequence owned by a column follows its table
                 and not (c.relkind = 'S' and exists (select 1 from pg_depend d where d.objid = c.oid
                          and d.classid = 'pg_class'::regclass and d.deptype in ('a', 'i')))
               order by c.relkind <> 'S', c.relname""", (schema_name, owner)).fetchall()
        for name, kind in rows:
            conn.execute(sql.SQL("alter " + _RELKIND_ALTER[kind] + " {}.{} owner to {}").format(
                sql.Identifier(schema_name), sql.Identifier(name), o))
            changed.append(f"{schema_name}.{name}")
        for fn in conn.execute(
                """select p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace
                   where n.nspname = %s and pg_get_userbyid(p.proowner) <> %s""", (schema_name, owner)):
            conn.execute(sql.SQL("alter function " + fn[0] + " owner to {}").format(o))
    if changed:
        log.info("owners: %d relations given to their stage roles", len(changed))
    return changed


def _stage_grants(conn, me: str, db: sql.Identifier) -> None:
    """What the stage roles need beyond their own schemas, and default privileges for what they create."""
    t, pub = sql.Identifier(TRANSFORMER), sql.Identifier(PUBLISHER)
    existing = _schemas(conn)
    conn.execute(sql.SQL("grant create on database {} to {}").format(db, pub))  # certified_next
    for s in PUBLISHER_READS:
        if s in existing:
            conn.execute(sql.SQL("grant usage on schema {} to {}").format(sql.Identifier(s), pub))
            if s == PERSON_SCHEMA:  # table by table, in audit.trivsel_secure_table (PUBLISHER_PERSON_TABLES)
                for owner in (TRANSFORMER, me):
                    conn.execute(sql.SQL("alter default privileges for role {} in schema {} revoke all on tables"
                                         " from {}").format(sql.Identifier(owner), sql.Identifier(s), pub))
                continue
            conn.execute(sql.SQL("grant select on all tables in schema {} to {}").format(sql.Identifier(s), pub))
            _default_grant(conn, (OWNERS.get(s, TRANSFORMER), me), s, "select", "tables", PUBLISHER)
    for s in ("raw", "audit"):
        _default_grant(conn, (LOADER,), s, "select", "tables", TRANSFORMER)
    for s in BUILD_SCHEMAS:
        if OWNERS.get(s) == TRANSFORMER:
            _default_grant(conn, (TRANSFORMER,), s, "select", "tables", TRANSFORMER)
    for s in ("marts", "reporting"):
        # the statistics' reporting tables (trivsel.stats, as transformer) are readable by bi_reader at once
        _default_grant(conn, (TRANSFORMER,), s, "select", "tables", BI_READER)
    # the quality gate (as transformer) holds a delivery whose rows fail a per-municipality test
    for table in TRANSFORMER_UPDATES:
        if conn.execute("select to_regclass(%s) is not null", (f"audit.{table}",)).fetchone()[0]:
            conn.execute(sql.SQL("grant update ({}) on audit.{} to {}").format(
                sql.SQL(", ").join(sql.Identifier(c) for c in TRANSFORMER_DELIVERY_COLUMNS),
                sql.Identifier(table), t))
    # the dbt stage records its own run results (trivsel.upstream.record_dbt_results)
    for table in TRANSFORMER_INSERTS:
        if conn.execute("select to_regclass(%s) is not null", (f"audit.{table}",)).fetchone()[0]:
            conn.execute(sql.SQL("grant insert, update on audit.{} to {}").format(sql.Identifier(table), t))


def _drop_legacy_person_tables(conn) -> None:
    """A warehouse built before PERSON_SCHEMA still has its person-level models in marts, no longer built
    there: drop them (dbt rebuilds them in person), or, if something depends on one, leave it closed to the
    readers (audit.trivsel_secure_table revokes a relation with a person column)."""
    for table in LEGACY_PERSON_TABLES:
        if conn.execute("select to_regclass(%s) is not null", (f"marts.{table}",)).fetchone()[0]:
            try:
                with conn.transaction():
                    conn.execute(sql.SQL("drop table marts.{}").format(sql.Identifier(table)))
                log.info("dropped marts.%s: person-level, now built in schema %s", table, PERSON_SCHEMA)
            except psycopg.errors.DependentObjectsStillExist:
                log.warning("marts.%s (person-level) has dependants: kept, closed to every reader role", table)


def apply(config: Config | None = None, url: str | None = None, tries: int = 5) -> dict[str, list[str]]:
    """Create the roles and (re)grant everything. Idempotent; safe while dbt runs.

    Two applies are serialised by an advisory lock, but a GRANT or REVOKE can still meet a concurrent in-place
    update of the same catalog row (another run's ANALYZE of a raw table, a dbt task's grants): PostgreSQL then
    raises "tuple concurrently updated" and rolls the grant transaction back. Being idempotent, it is re-run."""
    for attempt in range(1, tries + 1):
        try:
            return _apply(config, url)
        except psycopg.errors.InternalError_ as exc:
            if "tuple concurrently updated" not in str(exc) or attempt == tries:
                raise
            log.warning("roles apply met a concurrent catalog update (try %d of %d): re-run", attempt, tries)
            time.sleep(0.5 * attempt)
    raise AssertionError("unreachable")


def _apply(config: Config | None, url: str | None) -> dict[str, list[str]]:
    config = config or load_config()
    created: list[str] = []
    with psycopg.connect(url or warehouse.url(), autocommit=True) as conn:
        platform_schema.ensure(conn)
        conn.execute("select pg_advisory_lock(hashtext('trivsel:roles'))")
        try:
            for role in (*STATIC_ROLES, *(municipality_role(c) for c in config.codes)):
                if _create_role(conn, role):
                    created.append(role)
            me = sql.Identifier(conn.execute("select current_user").fetchone()[0])
            db = sql.Identifier(conn.info.dbname)
            for s in ("seeds", PERSON_SCHEMA, GX_SCHEMA):
                conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(s)))
            with conn.transaction():
                conn.execute(SECURE_FUNCTION)
                roles = [*STATIC_ROLES, *(municipality_role(c) for c in config.codes)]
                for role in roles:
                    conn.execute(sql.SQL("grant connect on database {} to {}").format(db, sql.Identifier(role)))
                # Nobody reads a schema by default; what each role may do is granted below.
                all_schemas = (*LOADER_SCHEMAS, *BUILD_SCHEMAS, "certified_next")
                existing = _schemas(conn)
                for s in all_schemas:
                    if s in existing:
                        conn.execute(sql.SQL("revoke all on schema {} from public").format(sql.Identifier(s)))
                readers = (BI_READER, EVALUATOR, *(municipality_role(c) for c in config.codes))
                for s in CLOSED_SCHEMAS:
                    if s in existing:
                        for role in readers:
                            conn.execute(sql.SQL("revoke all on schema {} from {}").format(
                                sql.Identifier(s), sql.Identifier(role)))
                            conn.execute(sql.SQL("revoke all on all tables in schema {} from {}").format(
                                sql.Identifier(s), sql.Identifier(role)))
                # municipality roles read marts only (through the per-relation rule below)
                for s in ("reporting", "certified"):
                    if s in existing:
                        for code in config.codes:
                            role = sql.Identifier(municipality_role(code))
                            conn.execute(sql.SQL("revoke all on schema {} from {}").format(sql.Identifier(s), role))
                            conn.execute(sql.SQL("revoke all on all tables in schema {} from {}").format(
                                sql.Identifier(s), role))
                _drop_legacy_person_tables(conn)
                _set_logins(conn)
                _stage_grants(conn, conn.execute("select current_user").fetchone()[0], db)
                pub = sql.Identifier(PUBLISHER)
                for s in ("raw", "staging"):
                    if s in existing:
                        conn.execute(sql.SQL("revoke all on schema {} from {}").format(sql.Identifier(s), pub))
                        conn.execute(sql.SQL("revoke all on all tables in schema {} from {}").format(
                            sql.Identifier(s), pub))
                # loader: raw, quarantine, audit
                for s in LOADER_SCHEMAS:
                    q, r = sql.Identifier(s), sql.Identifier(LOADER)
                    conn.execute(sql.SQL("grant usage, create on schema {} to {}").format(q, r))
                    conn.execute(sql.SQL("grant select, insert, update, delete on all tables in schema {} to {}")
                                 .format(q, r))
                    conn.execute(sql.SQL("grant usage, select on all sequences in schema {} to {}").format(q, r))
                    conn.execute(sql.SQL("alter default privileges for role {} in schema {} grant select, insert,"
                                         " update, delete on tables to {}").format(me, q, r))
                    conn.execute(sql.SQL("alter default privileges for role {} in schema {} grant usage, select"
                                         " on sequences to {}").format(me, q, r))
                # transformer: reads raw and audit, builds the dbt schemas
                t = sql.Identifier(TRANSFORMER)
                for s in ("raw", "audit"):
                    q = sql.Identifier(s)
                    conn.execute(sql.SQL("grant usage on schema {} to {}").format(q, t))
                    conn.execute(sql.SQL("grant select on all tables in schema {} to {}").format(q, t))
                    conn.execute(sql.SQL("alter default privileges for role {} in schema {} grant select on"
                                         " tables to {}").format(me, q, t))
                for s in BUILD_SCHEMAS:
                    q = sql.Identifier(s)
                    conn.execute(sql.SQL("grant usage, create on schema {} to {}").format(q, t))
                    conn.execute(sql.SQL("grant select on all tables in schema {} to {}").format(q, t))
                    conn.execute(sql.SQL("alter default privileges for role {} in schema {} grant select on"
                                         " tables to {}").format(me, q, t))
                conn.execute(sql.SQL("grant create on database {} to {}").format(db, t))  # certified_next
                # readers
                for s in READER_SCHEMAS:
                    grant_reader_schema(conn, s)
                    # tables the statistics create later (reporting.*) are readable at once; municipality
                    # roles get no default grant: a marts table is theirs only once its policy is on
                    conn.execute(sql.SQL("alter default privileges for role {} in schema {} grant select on"
                                         " tables to {}").format(me, sql.Identifier(s), sql.Identifier(BI_READER)))
                # evaluator: certified only (nothing granted elsewhere; revoke what may linger)
                ev = sql.Identifier(EVALUATOR)
                for s in (*LOADER_SCHEMAS, "staging", "intermediate", "marts", "reporting", "seeds"):
                    q = sql.Identifier(s)
                    conn.execute(sql.SQL("revoke all on schema {} from {}").format(q, ev))
                    conn.execute(sql.SQL("revoke all on all tables in schema {} from {}").format(q, ev))
                # municipality roles: usage on marts; table grants and policies per table
                for code in config.codes:
                    conn.execute(sql.SQL("grant usage on schema marts to {}").format(
                        sql.Identifier(municipality_role(code))))
                for s in (PERSON_SCHEMA, "marts", "reporting", "certified"):
                    for table in _tables(conn, s):
                        conn.execute("select audit.trivsel_secure_table(%s, %s)", (s, table))
                assign_owners(conn)
        finally:
            conn.execute("select pg_advisory_unlock(hashtext('trivsel:roles'))")
    if created:
        log.info("roles created: %s", ", ".join(created))
    return {"created": created, "roles": [*STATIC_ROLES, *(municipality_role(c) for c in config.codes)]}


def secure_marts(conn) -> int:
    """Re-apply grants and row-level security to every marts table (after a build outside dbt's hooks)."""
    n = 0
    if conn.execute("select to_regprocedure('audit.trivsel_secure_table(text,text)')").fetchone()[0] is None:
        return 0
    for table in _tables(conn, "marts"):
        conn.execute("select audit.trivsel_secure_table('marts', %s)", (table,))
        n += 1
    return n


def apply_or_warn() -> None:
    """apply() from the DAG: a warehouse user without CREATEROLE (external PostgreSQL run by a DBA) logs a
    warning instead of failing the load; the DBA runs `trivsel roles apply` as an admin."""
    try:
        apply()
    except psycopg.errors.InsufficientPrivilege as exc:
        log.warning("roles not applied (%s): run `trivsel roles apply` as a database admin",
                    str(exc).splitlines()[0])
