"""Run the real monthly DAG on a generated national month and measure every stage.

For each scale: reset the benchmark's own warehouse and inbox, generate the month, measure the floor (a bare
COPY of the same files into UNLOGGED tables) and the naive peer (bench.peer), then trigger the period's run
under the LocalExecutor that `make up` uses (bench.executor; `airflow dags test` only with --dags-test) while a
thread samples the RSS of the scheduler's process tree (the task processes are its children) and of the
warehouse backends every 0.2 s. Stage times come from Airflow's metadata DB (task_instance start/end; task
instances overlap, so a stage is the union of its windows) and the loader's `timing` lines in the task logs
(archive / parse+COPY / GX per delivery).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import psutil

from trivsel import settings
from trivsel.bench.targets import growth, overhead_seconds, union_seconds

log = logging.getLogger(__name__)

SAMPLE_EVERY = 0.2
MB = 1024 * 1024

#: Stages of the summary table, in order.
STAGES = ("discover+archive", "load to raw", "great expectations", "ingest (task wall)", "plan+pull",
          "gates+quality", "dbt", "significance tests", "certify/publish", "airflow overhead", "whole month")
TIMING_RE = re.compile(
    r"timing (?P<code>\d{3})/(?P<source>\w+) (?P<file>\S+) delivery (?P<did>\d+): start (?P<start>[\d.]+) "
    r"archive (?P<archive>[\d.]+)s load (?P<load>[\d.]+)s (?:gx (?P<gx>[\d.]+)s )?decide (?P<decide>[\d.]+)s "
    r"rows (?P<rows>\d+) bytes (?P<bytes>\d+)")


# ------------------------------------------------------------------------------------------- sampling


class Sampler(threading.Thread):
    """Memory of a process tree (the scheduler and its task processes; without `root`, this process's children:
    the `airflow dags test` tree) and of the warehouse backends.

    The tree's total is also taken as PSS (each shared page divided among the processes sharing it): the
    scheduler and dag-processor preload third-party modules that their forked task processes share
    (trivsel.airflow_component), and a sum of RSS counts those pages once per process, more than the
    machine holds. The memory target reads the PSS total; the RSS figures stay beside it."""

    def __init__(self, postmaster_pid: int | None, root: int | None = None):
        super().__init__(daemon=True)
        # (epoch, tree rss, max single rss, max pg backend rss, tree pss)
        self.samples: list[tuple[float, int, int, int, int]] = []
        self._halt = threading.Event()
        self._me = psutil.Process(root or os.getpid())
        self._with_root = root is not None
        self._pg = psutil.Process(postmaster_pid) if postmaster_pid else None

    def run(self) -> None:
        while not self._halt.is_set():
            t = time.time()
            tree = big = pg = pss = 0
            try:
                procs = self._me.children(recursive=True) + ([self._me] if self._with_root else [])
                for p in procs:
                    try:
                        full = p.memory_full_info()
                    except psutil.Error:
                        continue
                    rss = full.rss
                    tree += rss
                    pss += getattr(full, "pss", rss)
                    big = max(big, rss)
                if self._pg is not None:
                    for p in self._pg.children():
                        try:
                            pg = max(pg, p.memory_info().rss)
                        except psutil.Error:
                            continue
            except psutil.Error:
                pass
            if tree:
                self.samples.append((t, tree, big, pg, pss or tree))
            self._halt.wait(SAMPLE_EVERY)

    def stop(self) -> None:
        self._halt.set()
        self.join(5)


# ------------------------------------------------------------------------------------------- reset


def _postmaster_pid() -> int | None:
    from trivsel import warehouse

    try:
        return int((warehouse.embedded().data_dir / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def loader_tables(conn) -> list[str]:
    """The quoted names of every table the loader writes (raw, audit, quarantine; not the config tables):
    what a bench empties before it loads a month again."""
    return [f'"{s}"."{t}"' for s, t in conn.execute(
        "select schemaname, tablename from pg_tables where schemaname in ('raw', 'audit', 'quarantine')"
        " and tablename not like 'config\\_%'")]


def reset(period: str) -> None:
    """Empty the benchmark's warehouse, inbox, archive and the DAG's runs in Airflow's metadata DB."""
    import psycopg

    from trivsel import airflow_env, schema, warehouse

    if warehouse.is_external():
        raise SystemExit("trivsel.bench resets its warehouse: run it on the embedded one (unset WAREHOUSE_URL)")
    warehouse.start()
    airflow_env.ensure_metadata_db()
    with warehouse.connect(autocommit=True) as conn:
        schema.ensure(conn)
        # Empty what the loader writes; the dbt relations stay (the table models are rebuilt every run).
        tables = loader_tables(conn)
        conn.execute("drop schema if exists bench_floor cascade")
        # Incremental dbt models (keyed by delivery) are emptied too, so each scale's first month builds them
        # from nothing; delivery ids are not restarted, so no new delivery can be mistaken for an old one.
        tables += [f'"{s}"."{t}"' for s, t in conn.execute(
            "select table_schema, table_name from information_schema.columns"
            " where column_name = 'reference_fingerprint' and table_schema not in ('raw', 'audit', 'quarantine')"
            " and table_name in (select tablename from pg_tables where schemaname = table_schema)")]
        if tables:
            conn.execute("truncate " + ", ".join(tables) + " cascade")
        fresh = conn.execute("select to_regclass('person.fct_survey_answer') is null").fetchone()[0]
    if fresh:
        # On an empty warehouse Cosmos' per-model `dbt build` runs relationship tests of a model before the
        # other model they join exists (dim_municipality's tests read person.fct_survey_answer): build every
        # relation once, without tests, so the benchmark measures the steady state.
        from trivsel.cli import main as trivsel_main
        from trivsel.loading import sync_config

        print("bench: empty warehouse, building every dbt relation once (dbt seed, dbt run)", flush=True)
        sync_config()
        trivsel_main(["dbt", "seed", "--quiet"])
        trivsel_main(["dbt", "run", "--exclude", "path:models/certified", "--quiet"])
    with psycopg.connect(warehouse.url(warehouse.AIRFLOW_DB), autocommit=True) as conn:
        conn.execute("delete from task_instance where dag_id = %s", (airflow_env.DAG_ID,))
        conn.execute("delete from dag_run where dag_id = %s", (airflow_env.DAG_ID,))
    for folder in (settings.inbox_root(), settings.archive_root()):
        shutil.rmtree(folder, ignore_errors=True)
    for f in (settings.home() / "logs").glob(f"run-{period}*.log"):
        f.unlink()


# ------------------------------------------------------------------------------------------- floor


def _file_shape(path: Path) -> tuple[str, str, int]:
    """(delimiter, PostgreSQL encoding, column count) of a generated delivery."""
    with path.open("rb") as fh:
        head = fh.readline()
    encoding = "WIN1252" if path.name.startswith("fravaer_") else "UTF8"
    text = head.decode("cp1252" if encoding == "WIN1252" else "utf-8-sig")
    return ";", encoding, text.count(";") + 1


def floor(files: list[Path]) -> dict:
    """A bare COPY of the same files (CSV, their delimiter and encoding) into UNLOGGED all-text tables."""
    from trivsel import warehouse

    total_rows = total_bytes = 0
    with warehouse.connect(autocommit=True) as conn:
        conn.execute("drop schema if exists bench_floor cascade; create schema bench_floor")
        shapes = {}
        for p in files:
            shapes.setdefault(_file_shape(p), []).append(p)
        tables = {}
        for i, (delim, enc, ncols) in enumerate(shapes):
            name = f"bench_floor.t{i}"
            cols = ", ".join(f"c{j} text" for j in range(ncols))
            conn.execute(f"create unlogged table {name} ({cols})")
            tables[(delim, enc, ncols)] = name
        started = time.perf_counter()
        for shape, paths in shapes.items():
            delim, enc, _ = shape
            stmt = (f"copy {tables[shape]} from stdin with (format csv, delimiter '{delim}', header true, "
                    f"encoding '{enc}')")
            for p in paths:
                with conn.cursor() as cur:
                    with cur.copy(stmt) as copy, p.open("rb") as fh:
                        while chunk := fh.read(1024 * 1024):
                            copy.write(chunk)
                    total_rows += cur.rowcount
                total_bytes += p.stat().st_size
        seconds = time.perf_counter() - started
        conn.execute("drop schema bench_floor cascade")
    return {"seconds": seconds, "rows": total_rows, "bytes": total_bytes, "files": len(files),
            "rows_per_s": total_rows / seconds if seconds else None}


# ------------------------------------------------------------------------------------------- the run


@dataclass
class Window:
    stage: str
    start: float
    end: float
    rows: int = 0
    task: bool = False  # a task instance's window (Airflow's overhead is the wall outside all of them)


@dataclass
class RunResult:
    period: str
    returncode: int
    wall: float
    started: float
    mode: str = "executor"
    run_id: str = ""
    windows: list[Window] = field(default_factory=list)
    samples: list[tuple[float, int, int, int]] = field(default_factory=list)
    task_states: dict[str, int] = field(default_factory=dict)
    deliveries: dict[str, int] = field(default_factory=dict)
    rows_loaded: int = 0


def _task_instances(period: str, run_id: str | None = None) -> list[tuple[str, int, float, float, str]]:
    import psycopg

    from trivsel import airflow_env, warehouse

    with psycopg.connect(warehouse.url(warehouse.AIRFLOW_DB)) as conn:
        if run_id is None:
            run = conn.execute(
                "select run_id from dag_run where dag_id = %s and conf::text like %s order by id desc limit 1",
                (airflow_env.DAG_ID, f'%"period": "{period}"%')).fetchone()
            if not run:
                return []
            run_id = run[0]
        rows = conn.execute(
            "select task_id, map_index, start_date, end_date, state from task_instance"
            " where dag_id = %s and run_id = %s and start_date is not null order by start_date",
            (airflow_env.DAG_ID, run_id)).fetchall()
    return [(t, m, s.timestamp(), (e or s).timestamp(), st) for t, m, s, e, st in rows]


#: task id -> stage; every task of the monthly DAG (trivsel.dag_factory) must be here (tests/platform/test_bench.py)
TASK_STAGES: dict[str, str] = {
    "plan": "plan+pull", "lanes": "plan+pull",
    "ingest": "ingest (task wall)",  # per lane (trivsel.lanes): each municipality's pull, then load, in turn
    "validate": "great expectations",  # GX once per table and run (issue 15), if the DAG has that task
    "loads_done": "gates+quality", "quality_gate": "gates+quality", "findings": "gates+quality",
    "verdict": "gates+quality", "run_outcome": "gates+quality",
    "dbt_seeds": "dbt", "dbt_staging": "dbt", "dbt_models": "dbt",
    "significance_tests": "significance tests",
    "certify": "certify/publish", "publish": "certify/publish",
}


def _stage_of(task_id: str) -> str | None:
    """The stage a task instance counts to; None for a task the bench does not know (reported, not guessed)."""
    if task_id in TASK_STAGES:
        return TASK_STAGES[task_id]
    if task_id.startswith("dbt_"):
        return "dbt"
    return None


def timing_windows(lines) -> list[Window]:
    """The loader's per-delivery `timing` lines as stage windows (each delivery once: a log may repeat it)."""
    out: list[Window] = []
    seen = set()
    for line in lines:
        m = TIMING_RE.search(line)
        if not m or m.group("did") in seen:
            continue
        seen.add(m.group("did"))
        s = float(m.group("start"))
        a, ld, dec = (float(m.group(k)) for k in ("archive", "load", "decide"))
        gx = float(m.group("gx") or 0)
        rows = int(m.group("rows"))
        out += [Window("discover+archive", s, s + a), Window("load to raw", s + a, s + a + ld, rows)]
        if m.group("gx") is not None:
            out.append(Window("great expectations", s + a + ld, s + a + ld + gx, rows))
        out.append(Window("decide", s + a + ld + gx, s + a + ld + gx + dec))
    return out


def run_month(period: str, stack=None) -> RunResult:
    """One DAG run of `period`: under the executor (`stack`, an executor.Stack) or, without one, `airflow dags
    test` (for comparison only)."""
    from trivsel import warehouse

    if stack is not None:
        sampler = Sampler(_postmaster_pid(), root=stack.scheduler_pid)
        sampler.start()
        run_id, started = stack.trigger(period)
        run = stack.wait(run_id)
        sampler.stop()
        end = datetime.fromisoformat(run["end_date"]).timestamp() if run.get("end_date") else time.time()
        res = RunResult(period, 0 if run["state"] == "success" else 1, end - started, started, "executor",
                        run_id, samples=sampler.samples)
        from trivsel.bench.executor import task_log_files

        lines = (line for f in task_log_files(run_id) for line in f.read_text(errors="replace").splitlines())
    else:
        from trivsel.cli import run_period

        sampler = Sampler(_postmaster_pid())
        sampler.start()
        started = time.time()
        t0 = time.perf_counter()
        rc = run_period(period, quiet=True)
        wall = time.perf_counter() - t0
        sampler.stop()
        res = RunResult(period, rc, wall, started, "airflow dags test", samples=sampler.samples)
        lines = (settings.home() / "logs" / f"run-{period}.log").read_text(errors="replace").splitlines()
    for task_id, _m, s, e, state in _task_instances(period, res.run_id or None):
        stage = _stage_of(task_id)
        res.windows.append(Window(stage or f"unknown task {task_id}", s, e, task=True))
        res.task_states[state] = res.task_states.get(state, 0) + 1
    res.windows += timing_windows(lines)
    with warehouse.connect() as conn:
        for status, n, rows in conn.execute(
                "select status, count(*), coalesce(sum(rows_loaded), 0) from audit.delivery where period = %s"
                " group by status", (period,)):
            res.deliveries[status] = n
            if status == "loaded":
                res.rows_loaded = int(rows)
    return res


def _peaks(samples, inside) -> tuple[int, int, int]:
    peak = peak_big = peak_pg = 0
    for t, tree, big, pg, *_pss in samples:
        if inside(t):
            peak, peak_big, peak_pg = max(peak, tree), max(peak_big, big), max(peak_pg, pg)
    return peak, peak_big, peak_pg


def stage_figures(res: RunResult, input_rows: int) -> dict[str, dict]:
    """Per stage: seconds (the union of its windows: parallel task instances overlap), busy seconds (their
    sum), rows/s and the peak RSS of the samples inside its windows. Airflow's overhead is the wall time
    outside the union of every task instance's window."""
    out: dict[str, dict] = {}
    task_windows = [w for w in res.windows if w.task]
    spans = [(w.start, w.end) for w in task_windows]
    for stage in STAGES:
        ws = [w for w in res.windows if w.stage == stage]
        if stage == "whole month":
            ws = [Window(stage, res.started, res.started + res.wall)]
            seconds = busy = res.wall
        elif stage == "airflow overhead":
            seconds = busy = overhead_seconds(res.wall, spans)
        else:
            seconds = union_seconds([(w.start, w.end) for w in ws])
            busy = sum(w.end - w.start for w in ws)
        if stage == "airflow overhead":  # samples outside every task instance
            peak, peak_big, peak_pg = _peaks(res.samples, lambda t: not any(
                w.start <= t <= w.end for w in task_windows))
        else:
            peak, peak_big, peak_pg = _peaks(res.samples, lambda t, ws=ws: any(w.start <= t <= w.end for w in ws))
        out[stage] = {
            "seconds": round(seconds, 3),
            "busy_seconds": round(busy, 3),
            "rows_per_s": round(input_rows / seconds) if seconds > 0 else None,
            "peak_rss_mb": round(peak / MB, 1) if peak else None,
            "peak_rss_largest_process_mb": round(peak_big / MB, 1) if peak_big else None,
            "peak_pg_backend_rss_mb": round(peak_pg / MB, 1) if peak_pg else None,
            "windows": len(ws),
        }
    unknown = sorted({w.stage for w in task_windows if w.stage.startswith("unknown task")})
    if unknown:
        log.warning("bench: tasks without a stage (counted in no stage, only in the overhead's complement): %s",
                    unknown)
    return out


def load_validate_seconds(res: RunResult) -> float:
    """(load + validate) as the user waits for it: the union of the COPY and GX windows of every delivery
    (and of a per-run `validate` task), however many ingest tasks ran side by side."""
    return union_seconds([(w.start, w.end) for w in res.windows
                          if w.stage in ("load to raw", "great expectations")])


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


# ------------------------------------------------------------------------------------------- one scale


def bench_scale(scale: float, period: str, workdir: Path, stack=None, with_peer: bool = True) -> dict:
    from trivsel import warehouse
    from trivsel.bench import generate as gen
    from trivsel.bench import peer

    log.info("scale %s: reset", scale)
    reset(period)
    t = time.perf_counter()
    generated = gen.generate(settings.inbox_root(), scale, period)
    gen_seconds = time.perf_counter() - t
    files = [Path(p) for ps in generated["files"].values() for p in ps]
    size = sum(p.stat().st_size for p in files)
    print(f"scale {scale}: generated {len(files)} files, {size / MB:.0f} MB, rows {generated['rows']} "
          f"in {gen_seconds:.0f}s", flush=True)
    fl = floor(files)
    print(f"scale {scale}: floor (bare COPY into UNLOGGED) {fl['seconds']:.1f}s, {fl['rows']} rows, "
          f"{fl['rows_per_s']:.0f} rows/s", flush=True)
    pr = None
    if with_peer:
        pr = peer.run(files, warehouse.url())
        print(f"scale {scale}: naive peer (pandas read_csv + to_sql) {pr['seconds']:.1f}s, {pr['rows']} rows",
              flush=True)
    res = run_month(period, stack)
    input_rows = sum(generated["rows"].values())
    stages = stage_figures(res, input_rows)
    load_validate = load_validate_seconds(res)
    ingest_all = union_seconds([(w.start, w.end) for w in res.windows
                                if w.stage in ("discover+archive", "load to raw", "great expectations")])
    print(f"scale {scale}: DAG ({res.mode}) {'ok' if res.returncode == 0 else 'FAILED'} in {res.wall:.0f}s, "
          f"deliveries {res.deliveries}, raw rows loaded {res.rows_loaded}", flush=True)
    return {
        "scale": scale,
        "period": period,
        "generated": {"files": len(files), "bytes": size, "rows": generated["rows"],
                      "employees": generated["employees"], "seconds": round(gen_seconds, 1)},
        "floor": {k: (round(v, 3) if isinstance(v, float) else v) for k, v in fl.items()},
        "peer": pr,
        "dag": {"mode": res.mode, "run_id": res.run_id, "returncode": res.returncode,
                "wall_seconds": round(res.wall, 1), "task_states": res.task_states,
                "deliveries": res.deliveries, "raw_rows_loaded": res.rows_loaded,
                "parallelism": stack.cores if stack is not None else 1},
        "stages": stages,
        "load_validate_seconds": round(load_validate, 3),
        "ratio_load_validate_to_floor": _ratio(load_validate, fl["seconds"]),
        "ratio_load_validate_to_peer": _ratio(load_validate, pr["seconds"] if pr else None),
        "ratio_archive_load_validate_to_floor": _ratio(ingest_all, fl["seconds"]),
        "ratio_ingest_tasks_to_floor": _ratio(stages["ingest (task wall)"]["seconds"], fl["seconds"]),
        "peak_rss_mb": round(max((s[1] for s in res.samples), default=0) / MB, 1),
        "peak_pss_mb": round(max((s[-1] for s in res.samples), default=0) / MB, 1),
    }


# ------------------------------------------------------------------------------------------- month 13, 121


def _next_period(period: str, k: int = 1) -> str:
    from trivsel.bench.history import shifted_period

    return shifted_period(period, k)


def bench_history(first: dict, months: list[int], stack=None, on_month=None) -> list[dict]:
    """Month n+1 against the first, for each n in `months` (e.g. 12 and 120), on top of the first month
    still in the warehouse: the months between preloaded set-based into raw and audit (bench.history), one
    untimed catch-up `dbt run` so the marts hold them and one of the statistics so their kept state does
    (history.catch_up_statistics), a `vacuum (analyze)` as autovacuum would long since have run on them
    (history.settle), then month n+1 itself through the real DAG with newly
    generated files (a December again: a survey wave and the incident registers too)."""
    from trivsel import warehouse
    from trivsel.bench import generate as gen
    from trivsel.bench import history

    scale, period = first["scale"], first["period"]
    out = []
    done = 0  # shifts already in the warehouse: 0 is the first month, a measured month is one too
    for n in sorted(months):
        shifts = list(range(done + 1, n))
        with warehouse.connect(autocommit=True) as conn:
            pre = history.preload(conn, period, shifts)
        print(f"history: preloaded {len(shifts)} months ({pre['deliveries']} deliveries, "
              f"{sum(pre['raw_rows'].values())} raw rows) in {pre['seconds']:.0f}s", flush=True)
        catch = history.catch_up()
        stats_catch = history.catch_up_statistics()
        with warehouse.connect(autocommit=True) as conn:
            settled = history.settle(conn)
        with warehouse.connect() as conn:
            rows = history.history_rows(conn)
        print(f"history: preload by table {pre['table_seconds']}, analyze {pre['analyze_seconds']}s", flush=True)
        print(f"history: catch-up dbt run {catch['seconds']:.0f}s (slowest nodes "
              f"{dict(list(catch['nodes'].items())[:8])}); in the warehouse {rows}", flush=True)
        print(f"history: catch-up statistics {stats_catch['seconds']:.0f}s {stats_catch['domains']}", flush=True)
        print(f"history: vacuum (analyze) of the warehouse {settled['seconds']:.0f}s", flush=True)
        last = _next_period(period, n)
        generated = gen.generate(settings.inbox_root(), scale, last)
        res = run_month(last, stack)
        stages = stage_figures(res, sum(generated["rows"].values()))
        ratio = {k: _ratio(stages[k]["seconds"], first["stages"][k]["seconds"]) for k in STAGES}
        whole = _ratio(res.wall, first["dag"]["wall_seconds"])
        print(f"history: month {n + 1} ({last}) {'ok' if res.returncode == 0 else 'FAILED'} in {res.wall:.0f}s "
              f"against {first['dag']['wall_seconds']:.0f}s for the first ({period}): {whole}x", flush=True)
        out.append({"scale": scale, "first_period": period, "first_wall_seconds": first["dag"]["wall_seconds"],
                    "months_loaded_before": n, "period": last,
                    "mode": res.mode, "returncode": res.returncode, "wall_seconds": round(res.wall, 1),
                    "preload": pre, "catch_up_seconds": catch["seconds"], "catch_up_nodes": catch["nodes"],
                    "catch_up_statistics": stats_catch,
                    "settle_seconds": settled["seconds"],
                    "history": rows,
                    "stages": {k: v["seconds"] for k, v in stages.items()},
                    "peak_rss_mb": round(max((s[1] for s in res.samples), default=0) / MB, 1),
                    "peak_pss_mb": round(max((s[-1] for s in res.samples), default=0) / MB, 1),
                    "ratio_whole": whole, "ratio_by_stage": ratio})
        done = n
        if on_month is not None:  # written as each month ends: month 121 takes long, month 13 is kept
            on_month(out)
    return out


# ------------------------------------------------------------------------------------------- summary


def git_commit() -> dict:
    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=settings.ROOT, capture_output=True, text=True,
                                  timeout=20).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def summary_table(results: list[dict]) -> str:
    """Stage times (s, the union of each stage's windows), peak RSS (MB) and growth per doubling per scale."""
    scales = [r["scale"] for r in results]
    head = (f"{'stage':<20}" + "".join(f"{'t@' + format(s, 'g'):>9}" for s in scales) + f"{'t/2x':>7}"
            + "".join(f"{'MB@' + format(s, 'g'):>9}" for s in scales) + f"{'MB/2x':>7}"
            + f"{'rows/s@' + format(scales[-1], 'g'):>12}")
    lines = [head, "-" * len(head)]
    for stage in STAGES:
        t = [r["stages"].get(stage, {}).get("seconds", 0.0) for r in results]
        mem = [r["stages"].get(stage, {}).get("peak_rss_mb") for r in results]
        rps = results[-1]["stages"].get(stage, {}).get("rows_per_s")
        gt, gm = growth(t, scales), growth(mem, scales)
        lines.append(f"{stage:<20}" + "".join(f"{x:>9.1f}" for x in t) + f"{(gt or 0):>7.2f}"
                     + "".join(f"{(x or 0):>9.0f}" for x in mem) + f"{(gm or 0):>7.2f}"
                     + f"{(rps or 0):>12,.0f}")
    for label, key in (("floor: bare COPY", "floor"), ("naive peer: pandas", "peer")):
        vals = [(r.get(key) or {}).get("seconds") for r in results]
        if any(v is not None for v in vals):
            lines.append(f"{label:<20}" + "".join(f"{(v or 0):>9.1f}" for v in vals)
                         + f"{(growth(vals, scales) or 0):>7.2f}" + " " * (9 * len(scales) + 7)
                         + f"{((results[-1].get(key) or {}).get('rows_per_s') or 0):>12,.0f}")
    for label, key in (("(load+GX)/floor", "ratio_load_validate_to_floor"),
                       ("(load+GX)/peer", "ratio_load_validate_to_peer"),
                       ("(arch+load+GX)/floor", "ratio_archive_load_validate_to_floor"),
                       ("ingest tasks/floor", "ratio_ingest_tasks_to_floor")):
        lines.append(f"{label:<20}" + "".join(f"{(r.get(key) or 0):>9.2f}" for r in results))
    return "\n".join(lines)
