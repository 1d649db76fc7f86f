"""Run the real monthly DAG on a generated national month and measure every stage.

For each scale: reset the benchmark's own warehouse and inbox, generate the month, measure the floor (a bare
COPY of the same files into UNLOGGED tables), run `trivsel.cli.run_period` (`airflow dags test`) while a
thread samples the RSS of its process tree every 0.2 s, then read the stage times from Airflow's metadata DB
(task_instance start/end) and the loader's `timing` log lines (archive / parse+COPY / GX per delivery).
"""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from trivsel import settings

log = logging.getLogger(__name__)

SAMPLE_EVERY = 0.2
MB = 1024 * 1024

#: Stages of the summary table, in order.
STAGES = ("discover+archive", "load to raw", "great expectations", "ingest (task wall)", "plan+pull", "dbt",
          "significance tests", "certify/publish", "airflow overhead", "whole month")
TIMING_RE = re.compile(
    r"timing (?P<code>\d{3})/(?P<source>\w+) (?P<file>\S+) delivery (?P<did>\d+): start (?P<start>[\d.]+) "
    r"archive (?P<archive>[\d.]+)s load (?P<load>[\d.]+)s gx (?P<gx>[\d.]+)s decide (?P<decide>[\d.]+)s "
    r"rows (?P<rows>\d+) bytes (?P<bytes>\d+)")


# ------------------------------------------------------------------------------------------- sampling


class Sampler(threading.Thread):
    """RSS of this process's children (the `airflow dags test` tree) and of the warehouse backends."""

    def __init__(self, postmaster_pid: int | None):
        super().__init__(daemon=True)
        self.samples: list[tuple[float, int, int, int]] = []  # (epoch, tree rss, max single rss, max pg backend)
        self._halt = threading.Event()
        self._me = psutil.Process(os.getpid())
        self._pg = psutil.Process(postmaster_pid) if postmaster_pid else None

    def run(self) -> None:
        while not self._halt.is_set():
            t = time.time()
            tree = big = pg = 0
            try:
                for p in self._me.children(recursive=True):
                    try:
                        rss = p.memory_info().rss
                    except psutil.Error:
                        continue
                    tree += rss
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
                self.samples.append((t, tree, big, pg))
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
        tables = [f'"{s}"."{t}"' for s, t in conn.execute(
            "select schemaname, tablename from pg_tables where schemaname in ('raw', 'audit', 'quarantine')"
            " and tablename not like 'config\\_%'")]
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


@dataclass
class RunResult:
    period: str
    returncode: int
    wall: float
    started: float
    windows: list[Window] = field(default_factory=list)
    samples: list[tuple[float, int, int, int]] = field(default_factory=list)
    task_states: dict[str, int] = field(default_factory=dict)
    deliveries: dict[str, int] = field(default_factory=dict)
    rows_loaded: int = 0


def _task_instances(period: str) -> list[tuple[str, int, float, float, str]]:
    import psycopg

    from trivsel import airflow_env, warehouse

    with psycopg.connect(warehouse.url(warehouse.AIRFLOW_DB)) as conn:
        run = conn.execute(
            "select run_id from dag_run where dag_id = %s and conf::text like %s order by id desc limit 1",
            (airflow_env.DAG_ID, f'%"period": "{period}"%')).fetchone()
        if not run:
            return []
        rows = conn.execute(
            "select task_id, map_index, start_date, end_date, state from task_instance"
            " where dag_id = %s and run_id = %s and start_date is not null order by start_date",
            (airflow_env.DAG_ID, run[0])).fetchall()
    return [(t, m, s.timestamp(), (e or s).timestamp(), st) for t, m, s, e, st in rows]


def _stage_of(task_id: str) -> str:
    if task_id == "ingest":
        return "ingest (task wall)"
    if task_id in ("plan", "municipalities", "pull", "loads_done"):
        return "plan+pull"
    if task_id.startswith("dbt"):
        return "dbt"
    if task_id == "significance_tests":
        return "significance tests"
    if task_id in ("publish", "certify"):
        return "certify/publish"
    return "plan+pull"


def run_month(period: str) -> RunResult:
    from trivsel import warehouse
    from trivsel.cli import run_period

    sampler = Sampler(_postmaster_pid())
    sampler.start()
    started = time.time()
    t0 = time.perf_counter()
    rc = run_period(period, quiet=True)
    wall = time.perf_counter() - t0
    sampler.stop()
    res = RunResult(period, rc, wall, started, samples=sampler.samples)
    tis = _task_instances(period)
    for task_id, _m, s, e, state in tis:
        res.windows.append(Window(_stage_of(task_id), s, e))
        res.task_states[state] = res.task_states.get(state, 0) + 1
    log_file = settings.home() / "logs" / f"run-{period}.log"
    seen = set()
    for line in log_file.read_text(errors="replace").splitlines():
        m = TIMING_RE.search(line)
        if not m or m.group("did") in seen:
            continue
        seen.add(m.group("did"))
        s = float(m.group("start"))
        a, ld, gx, dec = (float(m.group(k)) for k in ("archive", "load", "gx", "decide"))
        rows = int(m.group("rows"))
        res.windows += [Window("discover+archive", s, s + a), Window("load to raw", s + a, s + a + ld, rows),
                        Window("great expectations", s + a + ld, s + a + ld + gx, rows),
                        Window("decide", s + a + ld + gx, s + a + ld + gx + dec)]
    with warehouse.connect() as conn:
        for status, n, rows in conn.execute(
                "select status, count(*), coalesce(sum(rows_loaded), 0) from audit.delivery where period = %s"
                " group by status", (period,)):
            res.deliveries[status] = n
            if status == "loaded":
                res.rows_loaded = int(rows)
    return res


def stage_figures(res: RunResult, input_rows: int) -> dict[str, dict]:
    """Per stage: seconds (sum of its windows), rows/s and peak RSS of the samples inside its windows."""
    out: dict[str, dict] = {}
    ti_sum = 0.0
    for stage in STAGES:
        ws = [w for w in res.windows if w.stage == stage]
        if stage == "whole month":
            seconds = res.wall
            ws = [Window(stage, res.started, res.started + res.wall)]
        elif stage == "airflow overhead":
            seconds = max(0.0, res.wall - ti_sum)
            ws = []
        else:
            seconds = sum(w.end - w.start for w in ws)
        if stage in ("ingest (task wall)", "plan+pull", "dbt", "significance tests", "certify/publish"):
            ti_sum += seconds
        peak = peak_big = peak_pg = 0
        for t, tree, big, pg in res.samples:
            if any(w.start <= t <= w.end for w in ws):
                peak, peak_big, peak_pg = max(peak, tree), max(peak_big, big), max(peak_pg, pg)
        if stage == "airflow overhead":  # samples outside every task instance
            inside = [w for w in res.windows if w.stage in ("ingest (task wall)", "plan+pull", "dbt",
                                                              "significance tests", "certify/publish")]
            for t, tree, big, pg in res.samples:
                if not any(w.start <= t <= w.end for w in inside):
                    peak, peak_big, peak_pg = max(peak, tree), max(peak_big, big), max(peak_pg, pg)
        out[stage] = {
            "seconds": round(seconds, 3),
            "rows_per_s": round(input_rows / seconds) if seconds > 0 else None,
            "peak_rss_mb": round(peak / MB, 1) if peak else None,
            "peak_rss_largest_process_mb": round(peak_big / MB, 1) if peak_big else None,
            "peak_pg_backend_rss_mb": round(peak_pg / MB, 1) if peak_pg else None,
            "windows": len(ws),
        }
    return out


# ------------------------------------------------------------------------------------------- one scale


def bench_scale(scale: float, period: str, workdir: Path) -> dict:
    from trivsel.bench import generate as gen

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
    res = run_month(period)
    input_rows = sum(generated["rows"].values())
    stages = stage_figures(res, input_rows)
    load_validate = stages["load to raw"]["seconds"] + stages["great expectations"]["seconds"]
    ingest_all = (stages["discover+archive"]["seconds"] + load_validate)
    print(f"scale {scale}: DAG {'ok' if res.returncode == 0 else 'FAILED'} in {res.wall:.0f}s, deliveries "
          f"{res.deliveries}, raw rows loaded {res.rows_loaded}", flush=True)
    return {
        "scale": scale,
        "period": period,
        "generated": {"files": len(files), "bytes": size, "rows": generated["rows"],
                      "employees": generated["employees"], "seconds": round(gen_seconds, 1)},
        "floor": {k: (round(v, 3) if isinstance(v, float) else v) for k, v in fl.items()},
        "dag": {"returncode": res.returncode, "wall_seconds": round(res.wall, 1), "task_states": res.task_states,
                "deliveries": res.deliveries, "raw_rows_loaded": res.rows_loaded},
        "stages": stages,
        "ratio_load_validate_to_floor": round(load_validate / fl["seconds"], 2) if fl["seconds"] else None,
        "ratio_archive_load_validate_to_floor": round(ingest_all / fl["seconds"], 2) if fl["seconds"] else None,
        "ratio_ingest_tasks_to_floor": (round(stages["ingest (task wall)"]["seconds"] / fl["seconds"], 2)
                                        if fl["seconds"] else None),
        "peak_rss_mb": round(max((s[1] for s in res.samples), default=0) / MB, 1),
    }


# ------------------------------------------------------------------------------------------- 13th month


def _next_period(period: str, k: int = 1) -> str:
    y, m = int(period[:4]), int(period[5:]) + k
    y, m = y + (m - 1) // 12, (m - 1) % 12 + 1
    return f"{y:04d}-{m:02d}"


def bench_history(first: dict, months: int = 12) -> dict:
    """The 13th month against the first: on top of the month `first` measured (still in the warehouse), load
    months-1 further monthly absence extracts straight through the loader (what their DAG runs would leave in
    raw and audit), then run the DAG for the month after with the same content as the first (period + 12:
    a December again, so the yearly incident registers and a survey wave belong to it too)."""
    from trivsel.bench import generate as gen
    from trivsel.config import load_config
    from trivsel.keys import KEY_ENV, ensure_local_key
    from trivsel.loading import ingest_municipality

    os.environ.setdefault(KEY_ENV, ensure_local_key())
    scale, period = first["scale"], first["period"]
    codes = load_config().codes
    t = time.perf_counter()
    for k in range(1, months):
        p = _next_period(period, k)
        gen.generate(settings.inbox_root(), scale, p, sources=("hr_absence",))
        for code in codes:
            ingest_municipality(code, p, run_id=f"bench-history-{p}")
        print(f"history: {p} loaded ({time.perf_counter() - t:.0f}s)", flush=True)
    last = _next_period(period, months)
    generated = gen.generate(settings.inbox_root(), scale, last)
    res = run_month(last)
    stages = stage_figures(res, sum(generated["rows"].values()))
    ratio = {k: (round(stages[k]["seconds"] / first["stages"][k]["seconds"], 2)
                 if first["stages"][k]["seconds"] else None) for k in STAGES}
    print(f"history: month {months + 1} ({last}) in {res.wall:.0f}s against {first['dag']['wall_seconds']:.0f}s "
          f"for the first ({period}): {ratio}", flush=True)
    return {"scale": scale, "first_period": period, "months_loaded_before": months, "period": last,
            "returncode": res.returncode, "wall_seconds": round(res.wall, 1),
            "stages": {k: v["seconds"] for k, v in stages.items()},
            "ratio_whole": round(res.wall / first["dag"]["wall_seconds"], 2), "ratio_by_stage": ratio}


# ------------------------------------------------------------------------------------------- summary


def growth(values: list[float | None]) -> float | None:
    """Growth factor per doubling of input: geometric mean over the consecutive doublings measured."""
    pairs = [(a, b) for a, b in zip(values, values[1:], strict=False) if a and b]
    if not pairs:
        return None
    return round(math.prod(b / a for a, b in pairs) ** (1 / len(pairs)), 2)


def git_commit() -> dict:
    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=settings.ROOT, capture_output=True, text=True,
                                  timeout=20).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def summary_table(results: list[dict]) -> str:
    scales = [r["scale"] for r in results]
    head = (f"{'stage':<20}" + "".join(f"{'t@' + format(s, 'g'):>9}" for s in scales) + f"{'t/2x':>7}"
            + "".join(f"{'MB@' + format(s, 'g'):>9}" for s in scales) + f"{'MB/2x':>7}"
            + f"{'rows/s@' + format(scales[-1], 'g'):>12}")
    lines = [head, "-" * len(head)]
    for stage in STAGES:
        t = [r["stages"][stage]["seconds"] for r in results]
        mem = [r["stages"][stage]["peak_rss_mb"] for r in results]
        rps = results[-1]["stages"][stage]["rows_per_s"]
        gt, gm = growth(t), growth(mem)
        lines.append(f"{stage:<20}" + "".join(f"{x:>9.1f}" for x in t) + f"{(gt or 0):>7.2f}"
                     + "".join(f"{(x or 0):>9.0f}" for x in mem) + f"{(gm or 0):>7.2f}"
                     + f"{(rps or 0):>12,.0f}")
    fl = [r["floor"]["seconds"] for r in results]
    lines.append(f"{'floor: bare COPY':<20}" + "".join(f"{x:>9.1f}" for x in fl) + f"{(growth(fl) or 0):>7.2f}"
                 + " " * (9 * len(scales) + 7) + f"{results[-1]['floor']['rows_per_s']:>12,.0f}")
    for label, key in (("(load+GX)/floor", "ratio_load_validate_to_floor"),
                       ("(arch+load+GX)/floor", "ratio_archive_load_validate_to_floor"),
                       ("ingest tasks/floor", "ratio_ingest_tasks_to_floor")):
        lines.append(f"{label:<20}" + "".join(f"{(r[key] or 0):>9.2f}" for r in results))
    return "\n".join(lines)


def targets(results: list[dict], months: dict | None) -> dict:
    at1 = next((r for r in results if r["scale"] == 1), results[0])
    out = {
        "load_validate_le_3x_floor": {"value": at1["ratio_load_validate_to_floor"],
                                      "met": at1["ratio_load_validate_to_floor"] <= 3},
        "whole_month_lt_180s": {"value": at1["stages"]["whole month"]["seconds"],
                                "met": at1["stages"]["whole month"]["seconds"] < 180},
        "peak_task_rss_lt_1536mb_every_scale": {"value": max(r["peak_rss_mb"] for r in results),
                                                "met": all(r["peak_rss_mb"] < 1536 for r in results)},
    }
    if len(results) > 1:
        tg = {s: growth([r["stages"][s]["seconds"] for r in results]) for s in STAGES}
        mg = {s: growth([r["stages"][s]["peak_rss_mb"] for r in results]) for s in STAGES}
        out["time_growth_per_doubling_le_2.2"] = {"value": tg, "met": all(v is None or v <= 2.2 for v in tg.values())}
        out["memory_flat_per_doubling"] = {"value": mg, "met": all(v is None or v <= 1.1 for v in mg.values())}
    if months:
        out["month_13_le_1.2x_first"] = {"value": months["ratio_whole"], "met": months["ratio_whole"] <= 1.2}
    return out
