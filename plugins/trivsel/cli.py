"""`trivsel`: the command a data team uses, locally or in CI.

    trivsel warehouse start|stop|status|url
    trivsel inbox CODE SOURCE          the folder a municipality's deliveries of a source land in
    trivsel periods                    periods with deliveries in the inbox, oldest first
    trivsel run --period YYYY-MM [--municipality CODE]   the monthly DAG (airflow dags test)
    trivsel load FILE --municipality CODE --source SOURCE --period YYYY-MM   one file through the rails
    trivsel samples                    write the bundled sample deliveries into the inbox
    trivsel demo                       samples + warehouse + every sample period + summary
    trivsel dbt ARGS...                dbt with the project's profile and the warehouse connection
    trivsel manifest [--force]         the dbt manifest the monthly DAG is rendered from (when stale)
    trivsel airflow up|down|status     Airflow (api-server + UI, scheduler, dag-processor, triggerer) locally
    trivsel bi up|down|status|provision   Superset on the marts, provisioned as code (make bi / make bi-down)
    trivsel fingerprint [SCHEMA...]    row count and content md5 of every table (default: person marts reporting)
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from trivsel import settings

SAMPLE_DOMAINS = ("survey", "absence", "incidents")


def _warehouse(args) -> int:
    from trivsel import warehouse

    if args.action == "start":
        warehouse.start()
        print(f"warehouse running ({'external' if warehouse.is_external() else 'embedded'})")
        print(warehouse.url())
    elif args.action == "stop":
        warehouse.stop()
        print("warehouse stopped")
    elif args.action == "status":
        print(warehouse.status())
    elif args.action == "url":
        print(warehouse.url(role=getattr(args, "role", None)))
    return 0


def _inbox(args) -> int:
    from trivsel.config import load_config
    from trivsel.loading import inbox_dir

    load_config().municipality(args.code)
    if args.source not in settings.SOURCES:
        print(f"unknown source {args.source!r}; sources: {', '.join(settings.SOURCES)}", file=sys.stderr)
        return 2
    folder = inbox_dir(args.code, args.source)
    folder.mkdir(parents=True, exist_ok=True)
    print(folder)
    return 0


def _periods(args) -> int:
    from trivsel.loading import periods_with_deliveries

    for p in periods_with_deliveries():
        print(p)
    return 0


def _samples(args) -> int:
    from trivsel.keys import ensure_local_key

    ensure_local_key()
    inbox = settings.inbox_root()
    total = 0
    for domain in SAMPLE_DOMAINS:
        try:
            module = importlib.import_module(f"trivsel.samples.{domain}")
        except ModuleNotFoundError as exc:
            if exc.name == f"trivsel.samples.{domain}":
                print(f"samples: no generator for {domain} yet", file=sys.stderr)
                continue
            raise
        files = module.generate(inbox)
        total += len(files)
        print(f"samples: {len(files)} {domain} files")
    print(f"samples: {total} files in {inbox}")
    return 0


#: dbt's commands (`docs`, `source`: groups of subcommands), to find the command among global flags
DBT_COMMANDS = frozenset({"build", "clean", "clone", "compile", "debug", "deps", "docs", "init", "list", "ls",
                          "parse", "retry", "run", "run-operation", "seed", "show", "snapshot", "source",
                          "test"})
#: the commands that load the profile and parse the project (or read its parse state): they get the DAG's
#: `--profile`/`--target`, so that they write the parse state the DAG's dbt tasks read (settings.DBT_PROFILE).
#: Not deps, clean, init (for init `--profile` means another thing) nor docs serve: they parse nothing.
DBT_PROFILE_COMMANDS = frozenset({"build", "clone", "compile", "debug", "docs generate", "list", "ls", "parse",
                                  "retry", "run", "run-operation", "seed", "show", "snapshot",
                                  "source freshness", "source snapshot-freshness", "test"})


def dbt_command_name(dbt_args: list[str]) -> str | None:
    """The dbt command in `dbt_args` ("run", "docs generate"): the first of DBT_COMMANDS, with the next word for
    a group; None without one (`--version`, `--help`)."""
    for i, word in enumerate(dbt_args):
        if word in DBT_COMMANDS:
            if word in ("docs", "source"):
                rest = [w for w in dbt_args[i + 1:] if not w.startswith("-")]
                return f"{word} {rest[0]}" if rest else word
            return word
    return None


def dbt_command(dbt_args: list[str]) -> list[str]:
    """The command line of `trivsel dbt ARGS...`: dbt with the project and its profiles.yml and, for the
    commands that parse, the profile and target the DAG's Cosmos tasks name (unless ARGS name their own)."""
    dbt = str(Path(sys.executable).with_name("dbt"))
    cmd = [dbt, *dbt_args]
    if not dbt_args or dbt_args[0] in ("--version", "-h", "--help"):
        return cmd
    cmd += ["--project-dir", str(settings.dbt_dir()), "--profiles-dir", str(settings.dbt_dir())]
    if dbt_command_name(dbt_args) in DBT_PROFILE_COMMANDS:
        given = {a.split("=", 1)[0] for a in dbt_args}
        if "--profile" not in given:
            cmd += ["--profile", settings.DBT_PROFILE]
        if not given & {"--target", "-t"}:
            cmd += ["--target", settings.DBT_TARGET]
    return cmd


def _dbt(args) -> int:
    from trivsel import warehouse

    env = dict(os.environ, **warehouse.dbt_env(warehouse.TRANSFORMER))
    cmd = dbt_command(args.dbt_args)
    from trivsel import child

    # its own process group, stopped with us (a stopped `trivsel dbt docs serve` leaves nothing serving)
    return child.run(cmd, env=env)


def _manifest(args) -> int:
    from trivsel import dbt_manifest

    path = dbt_manifest.build() if args.force else dbt_manifest.ensure()
    print(f"manifest: {path}")
    return 0


def _load(args) -> int:
    from trivsel import schema, warehouse
    from trivsel.config import load_config, validate_period
    from trivsel.keys import ensure_local_key, pseudonym_key
    from trivsel.loading import cleanup_interrupted, ingest_file, period_lock, sync_config

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    validate_period(args.period)
    if not warehouse.is_external():
        warehouse.start()
        os.environ.setdefault("TRIVSEL_PSEUDONYM_KEY", ensure_local_key())
    config = load_config()
    sync_config(config)
    muni = config.municipality(args.municipality)
    with warehouse.connect(warehouse.LOADER, autocommit=True) as conn:
        schema.ensure(conn)
        # The DAG's lock (loading.period_lock): a DAG ingest or another `trivsel load` of this municipality
        # and period waits for this one, and a load that died before is cleaned up first, as the DAG does.
        # each `trivsel load` is a run of its own (audit.delivery.run_id): a later `trivsel load` of a corrected
        # file replaces a quarantined one for pipeline.not_published, as a later DAG run's delivery does
        run_label = f"cli__{datetime.now(UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ')}"
        with period_lock(conn, muni.code, args.period):
            cleanup_interrupted(conn, muni.code, args.period, run_label)
            outcome = ingest_file(conn, Path(args.file), muni, args.source, args.period, run_label,
                                  pseudonym_key())
    print(outcome.line())
    for issue in outcome.issues[:50]:
        print(f"  row {issue.row} column {issue.column}: {issue.reason}" + (f" [{issue.value}]" if issue.value else ""))
    return 0 if outcome.status in ("loaded", "unchanged", "duplicate") else 1


def run_period(period: str, municipality: str | None = None, quiet: bool = False,
               through: str | None = None) -> int:
    """Run the monthly DAG for one period (or a backfill range) with `airflow dags test`: the DAG the
    scheduler runs, in this process's environment."""
    from trivsel import airflow_env, dbt_manifest, warehouse
    from trivsel.config import validate_period

    validate_period(period)
    if through:
        validate_period(through)
    warehouse.start()
    airflow_env.ensure_metadata_db()
    dbt_manifest.ensure()  # the DAG is rendered from it: built here when missing or stale, never at parse
    y, m = int(period[:4]), int(period[5:])
    y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    logical_date = f"{y:04d}-{m:02d}-05T06:00:00+00:00"
    conf = {"period": period, "through": through, "municipality": municipality}
    log_dir = settings.home() / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_file = log_dir / (f"run-{period}" + (f"--{through}" if through else "")
                          + (f"-{municipality}" if municipality else "") + ".log")
    cmd = [airflow_env.airflow_bin(), "dags", "test", airflow_env.DAG_ID, logical_date, "-c", json.dumps(conf)]
    started = time.monotonic()
    with log_file.open("w") as fh:
        proc = subprocess.run(cmd, env=airflow_env.env(), stdout=fh, stderr=subprocess.STDOUT)
    text = warehouse.redact(log_file.read_text(errors="replace"))
    log_file.write_text(text)
    _publish_task_logs(period, text)
    failed = _failed_tasks(period)
    status = "failed" if proc.returncode or failed else "success"
    if not quiet or status != "success":
        print(f"period {period}{' through ' + through if through else ''}: {status} in {time.monotonic() - started:.0f}s (log: {log_file})")
        for line in failed:
            print(f"  failed: {line}")
    return 1 if status != "success" else 0


def _airflow_db() -> str:
    """libpq URL of the metadata DB Airflow was given (it need not be the warehouse's server)."""
    from trivsel import airflow_env

    return airflow_env.env()["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace("postgresql+psycopg://",
                                                                          "postgresql://", 1)


def _publish_task_logs(period: str, text: str) -> None:
    """Per-task log files and the real start date of the `dags test` run, for the UI (trivsel.dags_test_logs)."""
    import psycopg

    from trivsel import airflow_env, dags_test_logs

    with psycopg.connect(_airflow_db()) as conn:
        run = conn.execute("select run_id from dag_run where dag_id = %s and conf::text like %s"
                           " order by id desc limit 1", (airflow_env.DAG_ID, f'%"period": "{period}"%')).fetchone()
    if not run:
        return
    try:
        dags_test_logs.publish(text, _airflow_db(), airflow_env.env(), airflow_env.DAG_ID, run[0])
    except (OSError, psycopg.Error) as exc:  # the run itself is done; only its view in the UI is missing
        print(f"warning: task logs of {run[0]} not written for the Airflow UI: {exc}")


def _failed_tasks(period: str) -> list[str]:
    """Task instances of the latest run for the period that did not succeed, from Airflow's metadata DB."""
    import psycopg

    from trivsel import airflow_env

    # the metadata DB Airflow was given (it need not be the warehouse's server)
    airflow_db = airflow_env.env()["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace("postgresql+psycopg://",
                                                                                   "postgresql://", 1)
    with psycopg.connect(airflow_db) as conn:
        run = conn.execute(
            "select run_id from dag_run where dag_id = 'trivsel_monthly' and conf::text like %s"
            " order by id desc limit 1", (f'%"period": "{period}"%',)).fetchone()
        if not run:
            return ["no DAG run was recorded"]
        rows = conn.execute(
            "select task_id, map_index, rendered_map_index, state from task_instance where run_id = %s"
            " and dag_id = 'trivsel_monthly' and state in ('failed', 'upstream_failed') order by task_id",
            (run[0],)).fetchall()
    return [f"{t}{'[' + (r or str(m)) + ']' if m >= 0 else ''}: {st}" for t, m, r, st in rows]


def _fingerprint(args) -> int:
    from trivsel import warehouse
    from trivsel.integrity import table_fingerprints

    with warehouse.connect(warehouse.TRANSFORMER) as conn:
        for name, fp in table_fingerprints(conn, args.schemas).items():
            print(f"{name}\t{fp.rows}\t{fp.content_md5}")
    return 0


def _run(args) -> int:
    return run_period(args.period, args.municipality, through=args.through)


def _demo(args) -> int:
    from trivsel import warehouse
    from trivsel.loading import periods_with_deliveries

    warehouse.start()
    _samples(args)
    periods = periods_with_deliveries()
    print(f"demo: running the monthly DAG over the {len(periods)} sample periods ({', '.join(periods)}):"
          " every period's deliveries are loaded, then the models are built once")
    rc = run_period(periods[0], through=periods[-1]) if periods else 1
    _print_summary()
    return rc


def _print_summary() -> None:
    from trivsel import warehouse

    print("\n== trivsel warehouse ==")
    with warehouse.connect(warehouse.TRANSFORMER) as conn:
        def q(sql_text):
            try:
                return conn.execute(sql_text).fetchall()
            except Exception:  # noqa: BLE001 - a table not built yet is shown as missing
                conn.rollback()
                return None

        rows = q("select status, count(*) from audit.delivery group by status order by status")
        print("deliveries:", ", ".join(f"{s} {n}" for s, n in rows or []))
        rows = q("select municipality_code, coalesce(round, '-'), coalesce(wave, '-'), respondents,"
                 " target_population, round(response_rate*100) from marts.survey_response_rate"
                 " where unit_name is null order by round_order, wave, municipality_code")
        if rows:
            print("survey response rates (municipalities; per unit in marts.survey_response_rate):")
            for r in rows:
                print(f"  {r[0]:>4} {r[1]:<9} {r[2]}  {r[3]}/{r[4]}  {r[5]} %")
        rows = q("select municipality_code, metric, round(change::numeric, 2), computable, reason"
                 " from reporting.absence_change where unit_name = '(average)' order by 1, 2")
        if rows:
            print("sick-leave change of the averages (follow-up − baseline mean):")
            for code, metric, change, computable, reason in rows:
                print(f"  {code:>4} {metric:<18} " + (f"{change}" if computable else f"withheld: {reason}"))
        rows = q("select municipality_code, register, string_agg(coalesce(n_counted::text, '—'), ' / ' order by year),"
                 " max(status) from marts.incident_episode_year group by 1, 2 order by 1, 2")
        if rows:
            print("incident episodes counted per year (— = not delivered):")
            for code, register, counts, status in rows:
                print(f"  {code:>4} {register:<18} {counts}  ({status})")
        rows = q("select status, count(*) from marts.delivery_coverage group by status order by status")
        if rows:
            print("delivery coverage:", ", ".join(f"{s} {n}" for s, n in rows))
    print(f"""
where to look:
  warehouse        {warehouse.redact(warehouse.url())}   (trivsel warehouse url prints it in full)
  tables           marts.*, reporting.*, audit.delivery, quarantine.delivery_issue
  run logs         {settings.home() / 'logs'}
  archive          {settings.archive_root()}
  Airflow UI       make up, then http://localhost:8080""")


def _certify(args) -> int:
    from trivsel import certify, warehouse

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    warehouse.start()
    try:
        result = certify.certify(args.period, args.run_id or f"cli__{time.strftime('%Y-%m-%dT%H:%M:%S')}",
                                 dbt_tests={"passed": True, "what": "skipped (--skip-dbt-tests)"}
                                 if args.skip_dbt_tests else None)
    except certify.CertificationFailed as exc:
        print(f"trivsel: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2, default=str))
    return 0


def _roles(args) -> int:
    from trivsel import roles, warehouse

    warehouse.start()
    out = roles.apply()
    print(f"roles: {', '.join(out['roles'])}" + (f" (created {', '.join(out['created'])})" if out["created"] else ""))
    return 0


def _reader_command(name: str, produce: Callable[[], list[Path]]) -> int:
    """A reader's command (export, report): prints the files `produce` wrote. A warehouse that does not answer
    is one line and exit 3, a login the reader role may not use one line and exit 2, not a traceback."""
    from trivsel import evaluator, warehouse

    try:
        written = produce()
    except evaluator.WarehouseDown as exc:
        print(f"trivsel {name}: {exc}", file=sys.stderr)
        return 3
    except warehouse.RoleUnavailable as exc:
        print(f"trivsel {name}: refused: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0


def _export(args) -> int:
    from trivsel import export

    return _reader_command("export", lambda: export.export(Path(args.out), period=args.period, fmt=args.format,
                                                           sep=args.sep, locale=args.locale))


def _docs(args) -> int:
    from trivsel import datadocs

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    print(f"Great Expectations Data Docs: {datadocs.build()}")
    return 0


def _report(args) -> int:
    from trivsel import report

    return _reader_command("report", lambda: [report.write_report(Path(args.out), baseline=args.baseline,
                                                                  followup=args.followup)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="trivsel", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("warehouse", help="start, stop, status or url of the warehouse")
    p.add_argument("action", choices=["start", "stop", "status", "url"])
    p.add_argument("--role", choices=["loader", "transformer", "publisher", "evaluator"],
                   help="url: the login of this stage role (default: the bootstrap superuser)")
    p.set_defaults(func=_warehouse)
    p = sub.add_parser("inbox", help="print the inbox folder of a municipality's source")
    p.add_argument("code")
    p.add_argument("source")
    p.set_defaults(func=_inbox)
    p = sub.add_parser("periods", help="list the periods that have deliveries, oldest first")
    p.set_defaults(func=_periods)
    p = sub.add_parser("run", help="run the monthly DAG for one period")
    p.add_argument("--period", required=True)
    p.add_argument("--through", help="backfill: also every later period with deliveries up to this one")
    p.add_argument("--municipality")
    p.set_defaults(func=_run)
    p = sub.add_parser("load", help="one file through archive, raw and GX")
    p.add_argument("file")
    p.add_argument("--municipality", required=True)
    p.add_argument("--source", required=True, choices=settings.SOURCES)
    p.add_argument("--period", required=True)
    p.set_defaults(func=_load)
    p = sub.add_parser("samples", help="write the sample deliveries into the inbox")
    p.set_defaults(func=_samples)
    p = sub.add_parser("demo", help="samples, warehouse, every sample period, summary")
    p.set_defaults(func=_demo)
    p = sub.add_parser("fingerprint", help="row count and content hash of every table (default: marts, reporting)")
    p.add_argument("schemas", nargs="*", default=["person", "marts", "reporting"])
    p.set_defaults(func=_fingerprint)
    p = sub.add_parser("airflow", help="Airflow on this machine: up, down or status (make up / make down)")
    p.add_argument("action", choices=["up", "down", "status"])
    p.set_defaults(func=lambda a: importlib.import_module("trivsel.local_airflow").main(a.action))
    p = sub.add_parser("bi", help="Superset on the marts: up (install, start, provision), down, status, provision")
    p.add_argument("action", choices=["up", "down", "status", "provision"])
    p.set_defaults(func=lambda a: importlib.import_module("trivsel.bi.cli").main(a.action))
    p = sub.add_parser("manifest", help="build the dbt manifest the monthly DAG is rendered from, if stale")
    p.add_argument("--force", action="store_true", help="rebuild even when current")
    p.set_defaults(func=_manifest)
    p = sub.add_parser("dbt", help="dbt with the project's profile and connection")
    p.add_argument("dbt_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=_dbt)
    p = sub.add_parser("certify", help="build, check and publish the certified schema for a period")
    p.add_argument("--period", required=True)
    p.add_argument("--run-id")
    p.add_argument("--skip-dbt-tests", action="store_true", help="do not run dbt test first")
    p.set_defaults(func=_certify)
    p = sub.add_parser("roles", help="create and grant the database roles (idempotent)")
    p.add_argument("action", choices=["apply"])
    p.set_defaults(func=_roles)
    p = sub.add_parser("export", help="write the certified tables and their data dictionary")
    p.add_argument("--out", required=True)
    p.add_argument("--period")
    p.add_argument("--format", choices=["csv", "parquet", "xlsx"], default="csv")
    p.add_argument("--sep", choices=[",", ";"], help="CSV list separator (default ',', with --locale da ';')")
    p.add_argument("--locale", choices=["intl", "da", "both"], default="intl",
                   help="CSV for Danish Excel with 'da' (';' between cells, decimal comma); default: "
                        "machine-friendly (',' and '.'); both: each table twice (<table>.da.csv)")
    p.set_defaults(func=_export)
    p = sub.add_parser("docs", help="Great Expectations Data Docs of the raw and certified suites (offline)")
    p.set_defaults(func=_docs)
    p = sub.add_parser("report", help="HTML evaluation report of a baseline/follow-up pair")
    p.add_argument("--out", required=True)
    p.add_argument("--baseline", help="baseline survey round (default: the first of settings.survey_rounds; "
                                      "a wave month YYYY-MM that is one round is accepted)")
    p.add_argument("--followup", help="follow-up survey round (default: the second of settings.survey_rounds)")
    p.set_defaults(func=_report)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except Exception as exc:  # noqa: BLE001 - one clear line for the data team, not a traceback
        from trivsel.config import ConfigError

        if isinstance(exc, ConfigError):
            print(f"trivsel: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
