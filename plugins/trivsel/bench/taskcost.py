"""`python -m trivsel.bench.taskcost`: what one task instance costs Airflow, before any task code runs.

Why a throwaway DAG: the monthly DAG's ~400 task instances each pay a fixed cost (a process, the DAG file's
parse, the Execution API calls, the scheduler's loop) that the national month's figures cannot separate from
the work. This runs a DAG whose mapped task does nothing, under the same executor stack as `make bench`
(trivsel.bench.executor: api-server, scheduler with the LocalExecutor and dag-processor, with
trivsel.local_airflow's settings), so the run's wall time is fixed cost only.

Two DAG files, chosen with --parse:

    trivsel   (default) the no-op DAG's file also builds the monthly DAG (trivsel.dag_factory, the dbt
              manifest, the config): every no-op task process pays what a real trivsel task pays to parse
    bare      only the no-op DAG: Airflow's own cost per task instance

Printed (and written to --out as JSON): the run's wall time from trigger to end, the task instances, the
slot-seconds per task instance (wall x parallelism / instances: what one instance costs the run), the mean
time a task instance runs (start to end: its process's parse, the no-op, reporting back), the mean time from
queued to start, the mean DAG-file parse the task logs report (`dag_file_parse_ms`), and the scheduler's gaps
(wall time in which no task instance of the run was running). Not a test: nothing here is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

from trivsel import settings

DAG_ID = "trivsel_taskcost"

_NOOP_DAG = '''"""A throwaway DAG of trivsel.bench.taskcost: {n} mapped task instances that do nothing."""
import sys
from datetime import datetime

from airflow.sdk import DAG, task

# whether the process that parses this file inherited the heavy modules (trivsel.airflow_component)
PRELOADED = sorted(m for m in ("cosmos", "dbt.cli.main", "psycopg") if m in sys.modules)
{trivsel}
with DAG(dag_id="{dag_id}", schedule=None, start_date=datetime(2020, 1, 1), catchup=False,
         max_active_runs=1, tags=["bench"]) as dag:
    @task
    def items() -> list[int]:
        return list(range({n}))

    @task
    def noop(i: int) -> None:
        print(f"taskcost: preloaded at parse: {{PRELOADED}}")

    noop.expand(i=items())
'''

# what dags/trivsel_monthly.py does: every task process of this file then parses the monthly DAG too
_TRIVSEL_PARSE = '''
from trivsel.config import load_config
from trivsel.dag_factory import build_monthly_dag

monthly = build_monthly_dag(load_config())
'''

PARSE_RE = re.compile(r'dag_file_parse_ms["=:\s]+(\d+)')


def write_dag(folder: Path, n: int, parse: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.py"):
        old.unlink()
    path = folder / f"{DAG_ID}.py"
    path.write_text(_NOOP_DAG.format(n=n, dag_id=DAG_ID, trivsel=_TRIVSEL_PARSE if parse == "trivsel" else ""))
    return path


def _ts(value: str | None) -> float | None:
    return datetime.fromisoformat(value).timestamp() if value else None


def idle_seconds(spans: list[tuple[float, float]], start: float, end: float) -> float:
    """Seconds of [start, end] in which none of the spans runs (the gaps between task instances)."""
    busy, cursor = 0.0, start
    for s, e in sorted(spans):
        s, e = max(s, cursor), min(e, end)
        if e > s:
            busy += e - s
            cursor = e
    return max(0.0, (end - start) - busy)


def task_instances(stack, run_id: str) -> list[dict]:
    from urllib.parse import quote

    out: list[dict] = []
    while True:
        page = stack.api.request("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}/taskInstances"
                                        f"?limit=100&offset={len(out)}")
        out += page["task_instances"]
        if not page["task_instances"] or len(out) >= page["total_entries"]:
            return out


def parse_ms(run_id: str) -> list[int]:
    from trivsel import airflow_env

    base = airflow_env.airflow_home() / "logs" / f"dag_id={DAG_ID}" / f"run_id={run_id}" / "task_id=noop"
    found = []
    for f in sorted(base.rglob("*.log")) if base.is_dir() else []:
        m = PARSE_RE.search(f.read_text(errors="replace"))
        if m:
            found.append(int(m.group(1)))
    return found


def measure(stack, n: int, runs: int) -> list[dict]:
    results = []
    for _ in range(runs):
        load = os.getloadavg()[0]
        run_id, started = stack.trigger(conf={})
        run = stack.wait(run_id)
        end = _ts(run.get("end_date")) or time.time()
        tis = task_instances(stack, run_id)
        noops = [t for t in tis if t["task_id"] == "noop"]
        spans = [(_ts(t["start_date"]), _ts(t["end_date"])) for t in tis if t["start_date"] and t["end_date"]]
        runs_for = [e - s for s, e in ((_ts(t["start_date"]), _ts(t["end_date"])) for t in noops) if s and e]
        waits = [s - q for s, q in ((_ts(t["start_date"]), _ts(t.get("queued_when"))) for t in noops) if s and q]
        wall = end - started
        parses = parse_ms(run_id)
        results.append({
            "run_id": run_id, "state": run["state"], "wall_s": round(wall, 2), "task_instances": len(tis),
            "load_1min_at_start": round(load, 2),
            "slot_s_per_task": round(wall * stack.cores / max(1, len(tis)), 3),
            "mean_run_s": round(statistics.fmean(runs_for), 3) if runs_for else None,
            "mean_queued_to_start_s": round(statistics.fmean(waits), 3) if waits else None,
            "mean_parse_ms": round(statistics.fmean(parses)) if parses else None,
            "idle_s": round(idle_seconds(spans, started, end), 2),
        })
        print(json.dumps(results[-1]), flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m trivsel.bench.taskcost", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", type=int, default=40, help="mapped no-op task instances per run")
    p.add_argument("--runs", type=int, default=2)
    p.add_argument("--parse", choices=("trivsel", "bare"), default="trivsel")
    p.add_argument("--cores", type=int, default=None, help="parallelism (default: the machine's cores)")
    p.add_argument("--out", default=None, help="also write the figures to this JSON file")
    args = p.parse_args(argv)
    if "TRIVSEL_HOME" not in os.environ:  # its own Airflow metadata and logs, never the demo's
        os.environ["TRIVSEL_HOME"] = str(settings.ROOT / ".local" / "taskcost")
        os.environ.setdefault("TRIVSEL_PG_PORT", "55438")

    from trivsel import warehouse
    from trivsel.bench.executor import Stack

    warehouse.start()
    folder = settings.home() / "taskcost" / "dags"
    write_dag(folder, args.tasks, args.parse)
    stack = Stack(args.cores, dag_id=DAG_ID, env_overrides={"AIRFLOW__CORE__DAGS_FOLDER": str(folder)})
    print(f"taskcost: {args.tasks} no-op task instances x {args.runs} runs, parse={args.parse}, parallelism "
          f"{stack.cores}, load {os.getloadavg()}", flush=True)
    try:
        stack.start()
        results = measure(stack, args.tasks, args.runs)
    finally:
        stack.stop()
    doc = {"tasks": args.tasks, "parse": args.parse, "parallelism": stack.cores, "cpu_count": os.cpu_count(),
           "runs": results}
    if args.out:
        Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
    best = min(results, key=lambda r: r["slot_s_per_task"])
    print(f"taskcost: best of {len(results)}: {best['slot_s_per_task']:.3f} slot-s per task instance "
          f"(wall {best['wall_s']:.1f}s for {best['task_instances']}), run {best['mean_run_s']}s, "
          f"parse {best['mean_parse_ms']} ms, queued->start {best['mean_queued_to_start_s']}s, "
          f"no task running {best['idle_s']}s")
    return 0 if all(r["state"] == "success" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
