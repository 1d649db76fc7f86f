"""Certification and atomic publication of the certified schema.

A period is certified only when all of these passed:

1. deliveries: every delivery of the period is decided (none still `validating`), and every delivery
   the models read is `loaded`, i.e. passed its Great Expectations suite in trivsel.loading. Quarantined
   and not-delivered keys do not block certification; they are published in the data-quality summary
   (certified.publication_log) and in certified.delivery_coverage, never as zeros.
2. dbt tests, measured: in the DAG, certify reads this run's own upstream results (trivsel.upstream): every
   dbt result its dbt tasks recorded (audit.dbt_result, from each invocation's run_results.json) and the
   Airflow states of this dag run's tasks. A failed or errored dbt result, or an upstream task that did not
   succeed (other than a pull, a held municipality's `quality` task, or an ingest that failed on a
   quarantined delivery), refuses the publication. The task runs with trigger rule `all_done`, so that a
   refusal is measured and recorded rather than the task being skipped. `trivsel certify` outside the DAG
   runs `dbt test` itself. The certified models' own tests and contracts run in the build of step 3.
3. the certified outputs: the dbt models in models/certified are built into schema `certified_next`
   (contracts enforced, small-cell suppression with the threshold from config), then validated with the
   Great Expectations suites expectations/certified_<table>.json inside PostgreSQL.

A refusal changes no certified table: certify appends a row with outcome `refused`, the measured checks and
the reason to certified.publication_log, logs the reason, and fails its task.

A run whose periods have no delivery at all (a scheduled run for an empty month, e.g. right after the DAG is
unpaused) publishes nothing: it would be a new certified version whose only news is `not_delivered` rows.
certify logs why and returns `published: false`; the previous certified version stays current.

Then, in one transaction, `certified_next` becomes `certified` (the previous `certified` schema is
renamed away and dropped; publication_log moves along): evaluators see the previous certified state until
the commit, and the complete new one after it. Nothing partial is ever visible.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psycopg import sql

from trivsel import privacy, roles, schema, settings, warehouse
from trivsel.config import load_config, validate_period

log = logging.getLogger(__name__)

CERTIFIED = "certified"
NEXT = "certified_next"
PREVIOUS = "certified_previous"
#: certified tables (dbt model → relation), in the order of the data dictionary
TABLES = {
    "cert_survey_item_change": "survey_item_change",
    "cert_survey_answer_distribution": "survey_answer_distribution",
    "cert_survey_response_rate": "survey_response_rate",
    "cert_absence_unit_year": "absence_unit_year",
    "cert_absence_change": "absence_change",
    "cert_incident_episode_year": "incident_episode_year",
    "cert_incident_rate_change": "incident_rate_change",
    "cert_delivery_coverage": "delivery_coverage",
}
META_TABLES = ("publication_log", "data_dictionary")
#: the small-cell threshold for dbt (macro small_cell_threshold), set for the certified build only: an
#: environment variable, not a dbt var, because dbt hashes its CLI vars into the partial-parse state, and a var
#: made every certified build parse the whole project again (as quality.RUN_ID_ENV does for the run id)
SMALL_CELL_THRESHOLD_ENV = "TRIVSEL_SMALL_CELL_THRESHOLD"

PUBLICATION_LOG_DDL = """
create table if not exists {schema}.publication_log (
    publication_id          bigint generated always as identity primary key,
    period                  text not null,
    periods                 text[] not null,
    run_id                  text not null,
    certified_at            timestamptz not null default now(),
    small_cell_threshold    integer not null,
    checks                  jsonb not null,
    deliveries_loaded       integer not null,
    deliveries_quarantined  integer not null,
    sources_not_delivered   integer not null,
    quality_summary         jsonb not null,
    tables                  jsonb not null,
    suppressed              boolean not null default false,
    outcome                 text not null default 'published' check (outcome in ('published', 'refused')),
    upstream                jsonb,
    refusal_reason          text
)
"""
#: a publication_log made before outcome/upstream existed gains them
PUBLICATION_LOG_MIGRATE = """
alter table {schema}.publication_log add column if not exists periods text[];
alter table {schema}.publication_log add column if not exists outcome text not null default 'published';
alter table {schema}.publication_log add column if not exists upstream jsonb;
alter table {schema}.publication_log add column if not exists refusal_reason text
"""

DICTIONARY_DDL = """
create table {schema}.data_dictionary (
    table_name         text not null,
    model              text not null,
    model_version      text,
    table_description  text,
    column_name        text not null,
    ordinal            integer not null,
    data_type          text,
    constraints        text,
    description        text,
    suppressed         boolean not null default false,
    primary key (table_name, column_name)
)
"""


class CertificationFailed(RuntimeError):
    """The period is not certified; the previous certified state stays published."""


@dataclass
class Result:
    period: str
    run_id: str
    checks: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, int] = field(default_factory=dict)
    publication_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"period": self.period, "run_id": self.run_id, "publication_id": self.publication_id,
                "checks": self.checks, "summary": self.summary, "tables": self.tables}


def threshold() -> int:
    return int(load_config().settings.get("small_cell_threshold", 5))


# ---------------------------------------------------------------- 1. deliveries


def check_deliveries(conn, periods: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(check, data-quality summary) for the deliveries of the periods a run covers."""
    rows = conn.execute(
        "select status, count(*) from audit.delivery where period = any(%s) group by status", (periods,)).fetchall()
    by_status = {s: n for s, n in rows}
    validating = by_status.get("validating", 0)
    quarantined = conn.execute(
        """select municipality_code, source, period, file_name, reason from audit.delivery d
           where period = any(%s) and status = 'quarantined'
           order by period, municipality_code, source, delivery_id""", (periods,)).fetchall()
    not_delivered: list[dict[str, Any]] = []
    if conn.execute("select to_regclass('marts.delivery_coverage')").fetchone()[0]:
        not_delivered = [
            {"municipality_code": m, "source": s, "period": p, "registered_as_delivering": d,
             "delivery_expected": e}
            for m, s, p, d, e in conn.execute(
                """select municipality_code, source, period, source_delivered_by_municipality, delivery_expected
                   from marts.delivery_coverage where period = any(%s) and status = 'not_delivered'
                   order by period, municipality_code, source""", (periods,)).fetchall()]
    check = {
        "passed": validating == 0,
        "what": "every delivery of the period decided; the loaded ones passed their GX suites "
                "(audit.delivery status loaded)",
        "deliveries_by_status": by_status,
    }
    if validating:
        check["reason"] = f"{validating} deliveries of {', '.join(periods)} are still validating"
    summary = {
        "periods": periods,
        "deliveries_loaded": by_status.get("loaded", 0),
        "deliveries_quarantined": by_status.get("quarantined", 0),
        "deliveries_superseded": by_status.get("superseded", 0),
        "deliveries_duplicate": by_status.get("duplicate", 0),
        # held until their partner delivery loads (trivsel.consistency / trivsel.quality): not in certified
        "deliveries_waiting": by_status.get("waiting", 0),
        "quarantined": [{"municipality_code": m, "source": s, "period": p, "file_name": f,
                         "reason": (r or "")[:500]} for m, s, p, f, r in quarantined],
        "not_delivered": not_delivered,
    }
    return check, summary


# ---------------------------------------------------------------- 2./3. dbt


def target_root() -> Path:
    """certify's dbt target directories, kept between runs for dbt's partial parse (as the quality gate keeps
    its own): `test` (the transformer's dbt test) and `build` (the publisher's build), one per role because
    the profile's user is part of dbt's parse state, so one directory shared by both roles would parse the
    whole project at every switch. Only certify's dbt uses them, under its advisory lock."""
    return settings.home() / "dbt-certify-target"


def _dbt(args: list[str], target_dir: Path, role: str = warehouse.PUBLISHER,
         small_cell_threshold: int | None = None) -> tuple[int, str]:
    """dbt `args` as `role` with `target_dir` as its target (its partial parse kept there). The threshold, when
    given, reaches dbt as SMALL_CELL_THRESHOLD_ENV (never a leftover of the caller's environment)."""
    env = dict(os.environ, **warehouse.dbt_env(role))
    env.pop(SMALL_CELL_THRESHOLD_ENV, None)
    if small_cell_threshold is not None:
        env[SMALL_CELL_THRESHOLD_ENV] = str(int(small_cell_threshold))
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    # a kept target holds the previous invocation's results: never read them as this one's
    (target_dir / "run_results.json").unlink(missing_ok=True)
    dbt = str(Path(sys.executable).with_name("dbt"))
    cmd = [dbt, *args, "--project-dir", str(settings.dbt_dir()), "--profiles-dir", str(settings.dbt_dir()),
           "--target-path", str(target_dir), "--log-path", str(target_dir / "logs")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=str(settings.dbt_dir()))
    out = warehouse.redact(proc.stdout + proc.stderr)
    return proc.returncode, out


def _dbt_failures(target_dir: Path) -> list[str]:
    path = target_dir / "run_results.json"
    if not path.exists():
        return []
    results = json.loads(path.read_text())
    return [f"{r['unique_id']}: {r['status']}: {(r.get('message') or '')[:300]}"
            for r in results.get("results", []) if r.get("status") not in ("success", "pass", "skipped")]


def run_dbt_tests(target_dir: Path) -> dict[str, Any]:
    """dbt test of everything the certified models read (outside the DAG)."""
    # the transformer's models, tested as the transformer (the publisher reads no raw and no staging)
    rc, out = _dbt(["test", "--exclude", "path:models/certified", "path:models/staging"], target_dir,
                   role=warehouse.TRANSFORMER)
    failures = _dbt_failures(target_dir)
    return {"passed": rc == 0, "what": "dbt test of intermediate, marts and reporting (trivsel certify)",
            "failures": failures[:20], **({} if rc == 0 else {"output": out[-2000:]})}


def build_certified(conn, small: int, target_dir: Path) -> dict[str, Any]:
    """dbt build of models/certified into certified_next (contracts, constraints and tests)."""
    conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(NEXT)))
    rc, out = _dbt(["build", "--select", "path:models/certified"], target_dir, small_cell_threshold=small)
    failures = _dbt_failures(target_dir)
    check = {"passed": rc == 0, "what": "dbt build of models/certified into certified_next: enforced "
                                        "contracts, constraints and the models' tests",
             "small_cell_threshold": small, "failures": failures[:20]}
    if rc != 0:
        check["output"] = out[-3000:]
    return check


def data_dictionary(manifest: dict[str, Any]) -> list[tuple]:
    """Rows of certified.data_dictionary from the dbt manifest (descriptions, contract types, constraints)."""
    rows = []
    for node in manifest.get("nodes", {}).values():
        if node.get("resource_type") != "model" or node.get("name") not in TABLES:
            continue
        latest = node.get("latest_version")
        if latest is not None and str(node.get("version")) != str(latest):
            continue
        table = TABLES[node["name"]]
        model_constraints = [c for c in node.get("constraints") or []]
        for i, (cname, col) in enumerate(node.get("columns", {}).items(), start=1):
            cons = [c.get("type") for c in col.get("constraints") or []]
            cons += [c.get("type") for c in model_constraints if cname in (c.get("columns") or [])]
            rows.append((table, node["name"], str(node.get("version")) if node.get("version") else None,
                         " ".join((node.get("description") or "").split()), cname, i, col.get("data_type"),
                         ", ".join(dict.fromkeys(c for c in cons if c)) or None,
                         " ".join((col.get("description") or "").split())))
    return rows


# ---------------------------------------------------------------- 4. expectations


def validate_outputs(small: int) -> dict[str, Any]:
    from trivsel.validation import validate_query

    params = {"small_counts": list(range(1, small)), "small_cell_threshold": small}
    per_table: dict[str, Any] = {}
    failures: list[str] = []
    evaluated = 0
    for table in TABLES.values():
        path = settings.expectations_dir() / f"certified_{table}.json"
        if not path.exists():
            per_table[table] = "no suite"
            continue
        spec = json.loads(path.read_text(encoding="utf-8"))
        n, fails = validate_query(warehouse.url(role=warehouse.PUBLISHER), f"certified_{table}",
                                  f'select * from {NEXT}."{table}"', spec, params)
        evaluated += n
        per_table[table] = {"expectations": n, "failed": len(fails)}
        failures += [f"{table}: {f.reason}" for f in fails]
    return {"passed": not failures, "what": "Great Expectations suites expectations/certified_*.json on "
                                             "certified_next", "expectations": evaluated,
            "tables": per_table, "failures": failures[:30]}


# ---------------------------------------------------------------- 5. publication


def publish(conn, result: Result, small: int, dictionary: list[tuple]) -> int:
    """Swap certified_next into certified in one transaction; returns the publication id."""
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext('trivsel:certify'))")
        conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(CERTIFIED)))
        conn.execute(PUBLICATION_LOG_DDL.format(schema=CERTIFIED))
        conn.execute(PUBLICATION_LOG_MIGRATE.format(schema=CERTIFIED))
        conn.execute(sql.SQL("alter table {}.publication_log set schema {}").format(
            sql.Identifier(CERTIFIED), sql.Identifier(NEXT)))
        conn.execute(DICTIONARY_DDL.format(schema=NEXT))
        with conn.cursor() as cur, cur.copy(
                f"copy {NEXT}.data_dictionary (table_name, model, model_version, table_description, column_name,"
                " ordinal, data_type, constraints, description) from stdin") as copy:
            for row in dictionary:
                copy.write_row(row)
        pid = conn.execute(
            f"""insert into {NEXT}.publication_log (period, periods, run_id, small_cell_threshold, checks,
                   deliveries_loaded, deliveries_quarantined, sources_not_delivered, quality_summary, tables,
                   upstream)
                values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) returning publication_id""",
            (result.period, result.summary["periods"], result.run_id, small, json.dumps(result.checks, default=str),
             result.summary["deliveries_loaded"], result.summary["deliveries_quarantined"],
             len(result.summary["not_delivered"]), json.dumps(result.summary, default=str),
             json.dumps(result.tables), json.dumps(result.checks.get("dbt_tests"), default=str))).fetchone()[0]
        if conn.execute("select 1 from pg_roles where rolname = 'evaluator'").fetchone():
            roles.grant_reader_schema(conn, NEXT)
        conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(PREVIOUS)))
        conn.execute(sql.SQL("alter schema {} rename to {}").format(sql.Identifier(CERTIFIED),
                                                                     sql.Identifier(PREVIOUS)))
        conn.execute(sql.SQL("alter schema {} rename to {}").format(sql.Identifier(NEXT),
                                                                     sql.Identifier(CERTIFIED)))
        conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(PREVIOUS)))
    return pid


def record_refusal(conn, result: Result, small: int, reason: str) -> int:
    """Append an outcome-`refused` row to certified.publication_log; no certified table changes."""
    summary = result.summary or {}
    reason = privacy.mask_identifiers(reason) or ""
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext('trivsel:certify'))")
        conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(CERTIFIED)))
        conn.execute(PUBLICATION_LOG_DDL.format(schema=CERTIFIED))
        conn.execute(PUBLICATION_LOG_MIGRATE.format(schema=CERTIFIED))
        pid = conn.execute(
            f"""insert into {CERTIFIED}.publication_log (period, periods, run_id, small_cell_threshold, checks,
                   deliveries_loaded, deliveries_quarantined, sources_not_delivered, quality_summary, tables,
                   outcome, upstream, refusal_reason)
                values (%s, %s, %s, %s, %s, %s, %s, %s, %s, '{{}}', 'refused', %s, %s)
                returning publication_id""",
            (result.period, summary.get("periods") or [result.period], result.run_id, small,
             privacy.mask_identifiers(json.dumps(result.checks, default=str)), summary.get("deliveries_loaded", 0),
             summary.get("deliveries_quarantined", 0), len(summary.get("not_delivered") or []),
             privacy.mask_identifiers(json.dumps(summary, default=str)),
             privacy.mask_identifiers(json.dumps(result.checks.get("dbt_tests"), default=str)), reason[:5000],
             )).fetchone()[0]
        if conn.execute("select 1 from pg_roles where rolname = 'evaluator'").fetchone():
            roles.grant_reader_schema(conn, CERTIFIED)
    return pid


def has_deliveries(conn, periods: list[str]) -> bool:
    """Whether any file at all came for the periods (loaded, quarantined, waiting, … : anything decided)."""
    return conn.execute("select exists (select 1 from audit.delivery where period = any(%s))",
                        (periods,)).fetchone()[0]


def certify(period: str, run_id: str, *, periods: list[str] | None = None,
            dbt_tests: dict[str, Any] | None = None) -> dict[str, Any]:
    """Certify and publish what a run loaded: `period` (the run's last period) and, for a backfill run,
    every period it covered (`periods`). `dbt_tests`: the measured upstream check (trivsel.upstream.measure)
    in the DAG; None runs `dbt test`. Raises CertificationFailed after recording the refusal (the previous
    state stays). Returns `published: false` without publishing when no file came for any of the periods."""
    periods = sorted({validate_period(p) for p in (periods or [])} | {validate_period(period)})
    small = threshold()
    result = Result(period, run_id)
    target = target_root()
    with warehouse.connect(warehouse.PUBLISHER, autocommit=True) as conn:
        schema.ensure(conn)
        if not has_deliveries(conn, periods):
            log.warning("run %s: no delivery came for %s: nothing new to certify; no certified version is "
                        "published (the previous one stays current)", run_id, ", ".join(periods))
            return {**result.as_dict(), "published": False,
                    "reason": f"no delivery for {', '.join(periods)}: nothing published"}
        conn.execute("select pg_advisory_lock(hashtext('trivsel:certify:build'))")
        try:
            result.checks["deliveries"], result.summary = check_deliveries(conn, periods)
            result.checks["dbt_tests"] = dbt_tests if dbt_tests is not None else run_dbt_tests(target / "test")
            blocking = [k for k, c in result.checks.items() if not c.get("passed")]
            if blocking:
                raise CertificationFailed(f"period {period} not certified: {', '.join(blocking)} failed: " + "; ".join(
                    f"{k}: {result.checks[k].get('reason') or json.dumps(result.checks[k], default=str)[:1500]}"
                    for k in blocking)[:3000])
            result.checks["certified_build"] = build_certified(conn, small, target / "build")
            if not result.checks["certified_build"]["passed"]:
                raise CertificationFailed(f"period {period} not certified: the certified models did not build: "
                                          + "; ".join(result.checks["certified_build"]["failures"])
                                          + result.checks["certified_build"].get("output", "")[-1500:])
            result.checks["certified_expectations"] = validate_outputs(small)
            if not result.checks["certified_expectations"]["passed"]:
                raise CertificationFailed(f"period {period} not certified: certified outputs failed their "
                                          "expectations: " + "; ".join(
                                              result.checks["certified_expectations"]["failures"]))
            for table in TABLES.values():
                result.tables[table] = conn.execute(
                    sql.SQL("select count(*) from {}.{}").format(sql.Identifier(NEXT), sql.Identifier(table))
                ).fetchone()[0]
            manifest = json.loads((target / "build" / "manifest.json").read_text())
            result.publication_id = publish(conn, result, small, data_dictionary(manifest))
        except CertificationFailed as exc:
            conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(NEXT)))
            refused = record_refusal(conn, result, small, str(exc))
            log.error("run %s: publication refused (publication_log %s): %s", run_id, refused,
                      privacy.mask_identifiers(str(exc)))
            raise
        finally:
            conn.execute("select pg_advisory_unlock(hashtext('trivsel:certify:build'))")
    log.info("period %s certified and published (publication %s): %s", period, result.publication_id,
             json.dumps(result.tables))
    return {**result.as_dict(), "published": True}
