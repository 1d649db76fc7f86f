"""No clear identifier in any log or in any table a reader can read (issue 13), through the real monthly DAG.

One `trivsel run --period 2013-12 --through 2014-01` (a backfill in one DAG run) on a warehouse and
Airflow home of its own, with every sample delivery of those periods and three bad ones, each carrying
identifiers planted for this test (9-digit numbers and a CPR-shaped number that occur nowhere else):

- Høje-Taastrup's (169) payroll file for 2014-01, enlarged past the set-based threshold, with one ragged
  line (two extra fields) whose employee number is planted: COPY meets it on the set-based path;
- a second 169 payroll file for 2014-01 whose Medarbejdernr and Enhed columns were swapped: every unit
  "name" is a planted employee number;
- planted employee and CPR numbers in free-text fields that load: 169's registry export (Beskrivelse),
  case review (Begrundelse) and use-of-force remark (Bemærkning), and 607's internal register (Beskrivelse).

Then every log (the PostgreSQL server log, Airflow's task and process logs, the run log, dbt's logs and
target files, GX results) and every relation bi_reader, evaluator and a municipality role can read
(enumerated as that role) are scanned: none may hold a planted identifier. The quarantine reasons must still
name file, row and column.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
import throwaway_db
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ROOT = Path(__file__).resolve().parents[2]
PERIODS = ("2013-12", "2014-01")
HEADER = "Medarbejdernr;Enhed;Måned;Fraværskode;Fraværstekst;Fraværstimer;Normtimer;Årsværk"
RAGGED = "987640001"
SWAPPED = [f"9876500{i:02d}" for i in range(1, 34)]
FREE_TEXT = ["987630001", "987630002", "987630003"]
CPR = "290276-4817"
PLANTED = [RAGGED, *SWAPPED, *FREE_TEXT, CPR, CPR.replace("-", "")]
READERS = ("bi_reader", "evaluator", "municipality_169", "municipality_461", "municipality_607")


def _payroll(path: Path, lines: list[str]) -> None:
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("cp1252"))


def _plant(inbox: Path) -> dict[str, Path]:
    """The three bad deliveries (and the free texts) in the inbox; returns the files by role."""
    payroll = inbox / "169" / "hr_absence" / "2014-01" / "fravaer_2014-01.csv"
    lines = payroll.read_bytes().decode("cp1252").splitlines()
    assert lines[0] == HEADER
    # past the set-based threshold (64 KiB): made-up employees of a unit of 169
    lines += [f"{300000 + i};VV fløj A;2014-01;;;0,00;160,33;1,00" for i in range(2000)]
    lines.insert(7, f"{RAGGED};VV fløj A;2014-01;SYG;Egen sygdom;7,40;160,33;1,00;ekstra;felter")
    _payroll(payroll, lines)
    assert payroll.stat().st_size > 64 * 1024

    swapped = payroll.with_name("fravaer_2014-01_ombyttet.csv")
    _payroll(swapped, [HEADER] + [f"VV fløj {'AB'[i % 2]};{n};2014-01;;;0,00;160,33;1,00"
                                  for i, n in enumerate(SWAPPED)])

    def edit(path: Path, row: int, column: int, text: str) -> None:
        rows = path.read_text(encoding="utf-8").splitlines()
        cells = rows[row].split(";")
        cells[column] = text
        rows[row] = ";".join(cells)
        path.write_text("\n".join(rows) + "\n", encoding="utf-8")

    registry = inbox / "169" / "incidents" / "2013-12" / "arbejdsskader_2013.csv"
    edit(registry, 2, 6, f"Medarbejder {FREE_TEXT[0]} truet på livet")
    review = inbox / "169" / "incidents" / "2013-12" / "sagsgennemgang_2013.csv"
    edit(review, 1, 4, f"Borger (cpr {CPR}) boede midlertidigt på Vestervænget og deltog ikke i projektet")
    force = inbox / "169" / "use_of_force" / "2013-12" / "magtanvendelser_2013.csv"
    edit(force, 1, 3, f"Tre er relateret til samme borger (sag {FREE_TEXT[2]}), som ikke deltog i projektet")
    internal = inbox / "607" / "incidents" / "2013-12" / "interne_2013.csv"
    edit(internal, 1, 5, f"Trussel mod medarbejder nr. {FREE_TEXT[1]} (chok)")
    return {"ragged": payroll, "swapped": swapped, "registry": registry, "review": review, "force": force,
            "internal": internal}


def _found(text: str) -> list[str]:
    return [p for p in PLANTED if p in text]


def _scan_files(roots: list[Path], skip: list[Path], since: float) -> tuple[int, dict[str, list[str]]]:
    """Every file under `roots` (but not under `skip`) changed since `since`: (files read, hits by file)."""
    hits: dict[str, list[str]] = {}
    n = 0
    for root in roots:
        for path in root.rglob("*"):
            if not path.is_file() or any(path.is_relative_to(s) for s in skip) or path.stat().st_mtime < since:
                continue
            n += 1
            found = _found(path.read_bytes().decode("utf-8", errors="replace"))
            if found:
                hits[str(path)] = found
    return n, hits


def _readable(c: psycopg.Connection, role: str) -> list[tuple[str, str, list[str]]]:
    """Every relation (outside the system catalogs) `role` can read, with the columns it may select,
    enumerated as that role."""
    c.execute(sql.SQL("set role {}").format(sql.Identifier(role)))
    try:
        rels = c.execute(
            """select n.nspname, c.relname,
                      array_agg(a.attname order by a.attnum) filter (
                          where has_column_privilege(c.oid, a.attnum, 'select'))
                 from pg_class c join pg_namespace n on n.oid = c.relnamespace
                 join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
                where c.relkind in ('r', 'v', 'm', 'p', 'f')
                  and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname !~ '^pg_'
                  and has_schema_privilege(n.oid, 'usage')
                group by 1, 2 order by 1, 2""").fetchall()
        return [(s, r, cols) for s, r, cols in rels if cols]
    finally:
        c.execute("reset role")


def _scan_relations(c: psycopg.Connection, role: str) -> tuple[int, dict[str, list[str]]]:
    """Read every relation `role` can read, as `role` (row-level security applies), and look for the planted
    identifiers in every value."""
    rels = _readable(c, role)
    hits: dict[str, list[str]] = {}
    c.execute(sql.SQL("set role {}").format(sql.Identifier(role)))
    try:
        for schema, rel, cols in rels:
            text = "\n".join(row[0] or "" for row in c.execute(
                sql.SQL("select concat_ws(' ', {}) from {}.{}").format(
                    sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(col)) for col in cols),
                    sql.Identifier(schema), sql.Identifier(rel))))
            found = _found(text)
            if found:
                hits[f"{schema}.{rel}"] = found
    finally:
        c.execute("reset role")
    return len(rels), hits


@pytest.mark.e2e
def test_no_planted_identifier_reaches_a_log_or_a_readable_table(test_home, sample_root):
    home = test_home.parent / "log-scan-e2e"
    shutil.rmtree(home, ignore_errors=True)
    env = throwaway_db.isolated_env("TRIVSEL_BULK_FROM_BYTES", TRIVSEL_HOME=str(home),
                                    TRIVSEL_PG_PORT=str(throwaway_db.free_port()), TRIVSEL_TASK_RETRIES="0")
    started = time.time()
    url = throwaway_db.run_python("from trivsel import warehouse; print(warehouse.start())", env, timeout=180)
    embedded_env = dict(env)
    env.update(WAREHOUSE_URL=url)
    env.setdefault("TRIVSEL_PSEUDONYM_KEY", "log-scan-e2e-pseudonym-key-0123456789abcdef")
    try:
        inbox = home / "inbox"
        for period in PERIODS:
            for f in sample_root.glob(f"*/*/{period}/*"):
                dest = inbox / f.relative_to(sample_root)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f, dest)
        files = _plant(inbox)

        trivsel = str(Path(sys.executable).with_name("trivsel"))
        proc = subprocess.run([trivsel, "run", "--period", PERIODS[0], "--through", PERIODS[-1]], env=env,
                              capture_output=True, text=True, timeout=2400)
        out = proc.stdout + proc.stderr
        print(out[-4000:])
        assert proc.returncode == 1, "169's quarantined payroll fails its ingest: " + out[-3000:]
        assert not _found(out), ("the run's console output", _found(out))

        with psycopg.connect(url, autocommit=True) as c:
            status = {name: (s, reason) for name, s, reason in c.execute(
                "select file_name, status, reason from audit.delivery order by delivery_id")}
            for role in ("registry", "review", "force", "internal"):
                assert status[files[role].name][0] == "loaded", status[files[role].name]
            assert status[files["swapped"].name][0] == "quarantined", status[files["swapped"].name]
            assert status[files["ragged"].name][0] in ("quarantined", "loaded"), status[files["ragged"].name]

            # the reasons stay useful: file, row and column, the value masked
            issues = c.execute("select file_name, row_number, column_name, reason, value"
                               " from quarantine.delivery_issue where file_name = %s and column_name = 'Enhed'"
                               " order by row_number", (files["swapped"].name,)).fetchall()
            assert [i[1] for i in issues] == list(range(2, 2 + len(SWAPPED))), issues[:3]
            assert all("unknown unit" in i[3] and "9 digits masked" in i[3] for i in issues), issues[:3]
            reason = status[files["swapped"].name][1]
            assert f"{files['swapped'].name} row 2 column Enhed: unknown unit '<9 digits masked>'" in reason
            if status[files["ragged"].name][0] == "quarantined":
                ragged = c.execute("select row_number, reason from quarantine.delivery_issue"
                                   " where file_name = %s", (files["ragged"].name,)).fetchall()
                assert any(r == 8 for r, _ in ragged), ragged  # the line after the header's seventh

            # the free texts loaded, masked, and reached the models
            masked = c.execute(
                """select description from raw.ohs_registration union all select description
                   from raw.internal_incident union all select exclusion_reason from raw.ohs_case_review
                   union all select note from raw.use_of_force_count""").fetchall()
            texts = [t for (t,) in masked if t]
            assert sum("<9 digits masked>" in t for t in texts) == 3, "each planted number masked, once"
            assert sum("<10 digits masked>" in t for t in texts) == 1, "the CPR number masked"

            # free text reaches what readers read (the exclusion reasons of 169's incident figures): masked
            c.execute("set role bi_reader")
            reasons = " ".join(r or "" for (r,) in c.execute(
                "select exclusion_reasons from marts.incident_year where municipality_code = '169'"))
            c.execute("reset role")
            assert "digits masked>" in reasons, reasons[:500]

            # every relation each reader role can read, as that role
            read = {}
            for role in READERS:
                n, hits = _scan_relations(c, role)
                assert not hits, (role, hits)
                read[role] = n
            assert read["bi_reader"] > 20 and read["evaluator"] > 5 and read["municipality_169"] > 5, read
            assert "certified.delivery_coverage" in {f"{s}.{r}" for s, r, _ in _readable(c, "evaluator")}
            everything = "\n".join(str(r) for r in c.execute("select * from marts.delivery_coverage"))
            assert files["swapped"].name in everything, "coverage names the quarantined file"

        # Airflow's metadata: task instances, XComs (the ingest's outcomes), event log
        airflow_db = {**conninfo_to_dict(url), "dbname": "airflow"}
        with psycopg.connect(make_conninfo(**airflow_db), autocommit=True) as a:
            tables = [t for (t,) in a.execute("select table_name from information_schema.tables"
                                              " where table_schema = 'public'")]
            assert "xcom" in tables and "task_instance" in tables
            for t in ("xcom", "task_instance", "log", "rendered_task_instance_fields", "dag_run"):
                if t in tables:
                    text = "\n".join(str(r) for r in a.execute(sql.SQL("select * from {}").format(
                        sql.Identifier(t))))
                    assert not _found(text), (t, _found(text))

        # every log and output file: the server log, Airflow's task and process logs, the run log, dbt's
        # logs and target files (also the dbt project's own, if a run wrote there), GX results
        pgdata = next(p.parent for p in home.rglob("PG_VERSION") if p.parent.name != "base"
                      and (p.parent / "postgresql.conf").exists())
        roots = [home, ROOT / "dbt" / "target", ROOT / "dbt" / "logs"]
        n, hits = _scan_files([r for r in roots if r.exists()], skip=[inbox, home / "archive", pgdata],
                              since=started)
        assert not hits, hits
        server_log = next(home.rglob("postgres.log")).read_text(errors="replace")
        assert "extra data after last expected column" in server_log, "the COPY error itself is logged"
        # the task logs: Airflow's files (a scheduler's run) or the run log (`airflow dags test` prints them)
        task_logs = [*(home / "airflow" / "logs").rglob("*.log"), *(home / "logs").glob("run-*.log")]
        ingest_logs = [p for p in task_logs if "municipality 169, period 2014-01" in p.read_text(errors="replace")]
        assert ingest_logs, ("the ingest task's log was scanned", task_logs)
        assert all(files["swapped"].name in p.read_text(errors="replace") for p in ingest_logs), \
            "the ingest task log names the quarantined file"
        assert n >= len(task_logs) + 1, "the server log and the task logs were among the files scanned"
    finally:
        subprocess.run([sys.executable, "-c", "from trivsel import warehouse; warehouse.stop()"], env=embedded_env,
                       capture_output=True, timeout=120)
        shutil.rmtree(home, ignore_errors=True)
