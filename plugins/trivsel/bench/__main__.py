"""`python -m trivsel.bench` (make bench): the national-month benchmark of issue 15. See docs/scaling.md.

    python -m trivsel.bench --scales 0.5 1 --months 12 120     make bench: every target in one table
    python -m trivsel.bench --scales 0.05                      a quick look while developing
    python -m trivsel.bench --scales 0.05 --months 12 120      ... with the month-13 and month-121 runs
    python -m trivsel.bench --scales 1 --months 12 120 --history-scale 0.1
                                                               month 1 @1; months 1, 13, 121 again @0.1
    python -m trivsel.bench --dags-test                        `airflow dags test` instead (comparison only)
    python -m trivsel.bench --report                           reprint the table of bench/results.json

The DAG runs under the LocalExecutor that `make up` uses (api-server, scheduler and dag-processor started by
the bench as its own children, parallelism and pool matched to the cores). Every scale empties the warehouse's
raw, audit and quarantine tables and the inbox, so by default it keeps its own state in .local/bench with the
embedded warehouse on port 55439; set TRIVSEL_HOME and TRIVSEL_PG_PORT to put it elsewhere (never on a
warehouse whose data you need).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path

from trivsel import settings


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m trivsel.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scales", type=float, nargs="+", default=[1])
    p.add_argument("--period", default="2015-12")
    p.add_argument("--months", type=int, nargs="*", default=[],
                   help="with history: for each n, n months in the warehouse, then month n+1 against the first "
                        "(on --history-scale, else the scale-1 run, else the first scale's)")
    p.add_argument("--history-scale", type=float, default=None,
                   help="run the --months on this scale: if it is not one of --scales, month 1 is measured again "
                        "at it after the scales (for the ratios), and each row of the table names its scale")
    p.add_argument("--no-peer", action="store_true", help="skip the naive peer (pandas read_csv + to_sql)")
    p.add_argument("--dags-test", action="store_true",
                   help="run the DAG with `airflow dags test` (serial, one process) instead of the executor")
    p.add_argument("--out", default=str(settings.ROOT / "bench" / "results.json"))
    p.add_argument("--report", action="store_true", help="only print the table of an existing --out file")
    args = p.parse_args(argv)
    if args.report:
        _print(json.loads(Path(args.out).read_text()))
        return 0
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    # Never the demo's warehouse: every scale empties raw, audit and quarantine.
    if "TRIVSEL_HOME" not in os.environ:
        os.environ["TRIVSEL_HOME"] = str(settings.ROOT / ".local" / "bench")
        os.environ.setdefault("TRIVSEL_PG_PORT", "55439")

    from trivsel.bench import generate as gen
    from trivsel.bench import run
    from trivsel.keys import KEY_ENV, ensure_local_key

    config = gen.write_config(settings.home() / "bench" / "municipalities.yml")
    os.environ["TRIVSEL_CONFIG"] = str(config)
    os.environ.setdefault("TRIVSEL_TASK_RETRIES", "0")  # a failure shows at once, not after backoff
    print(f"trivsel bench: TRIVSEL_HOME={settings.home()} config={config} cpus={os.cpu_count()} "
          f"load {os.getloadavg()}", flush=True)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"machine": {"cpu_count": os.cpu_count(), "memory_gb": _memory_gb(),
                       "load_start": [round(x, 2) for x in os.getloadavg()]},
           **run.git_commit(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "period": args.period, "mode": "airflow dags test" if args.dags_test else "executor",
           "months_requested": sorted(args.months), "scales": [], "months": []}
    history_on = history_scale(args.scales, args.history_scale)
    doc["history_scale"] = history_on if args.months else None
    # a SIGTERM (a stopped make) still stops the Airflow children and writes what was measured
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    stack = None
    ok = True
    try:
        from trivsel import warehouse

        warehouse.start()
        os.environ.setdefault(KEY_ENV, ensure_local_key())
        if not args.dags_test:
            from trivsel.bench.executor import Stack

            stack = Stack()
            print(f"bench: starting Airflow (LocalExecutor, parallelism {stack.cores}) ...", flush=True)
            stack.start()
        for scale in args.scales:
            result = run.bench_scale(scale, args.period, out.parent, stack, with_peer=not args.no_peer)
            doc["scales"].append(result)
            ok &= result["dag"]["returncode"] == 0
            _write(out, doc)
            if args.months and scale == history_on:
                ok &= _history(doc, out, result, args.months, stack)
        if args.months and history_on not in args.scales:
            # month 1 again at the history's own scale: a ratio compares months of one scale
            print(f"bench: month 1 again at scale {history_on:g}, the history's scale", flush=True)
            base = run.bench_scale(history_on, args.period, out.parent, stack, with_peer=False)
            doc["history_base"] = base
            ok &= base["dag"]["returncode"] == 0
            _write(out, doc)
            ok &= _history(doc, out, base, args.months, stack)
    finally:
        if stack is not None:
            stack.stop()
        doc["machine"]["load_end"] = [round(x, 2) for x in os.getloadavg()]
        doc["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        _write(out, doc)
    _print(doc)
    print(f"\nfigures: {out}")
    return 0 if ok else 1


def history_scale(scales: list[float], chosen: float | None) -> float:
    """The scale the --months run on: the one asked for, else scale 1 if it ran, else the first scale."""
    if chosen is not None:
        return chosen
    return 1.0 if 1.0 in scales else scales[0]


def _history(doc: dict, out: Path, first: dict, months: list[int], stack) -> bool:
    """Months n+1 on top of `first`'s month, still in the warehouse (the next scale empties it)."""
    from trivsel.bench import run

    def keep(done: list[dict]) -> None:
        doc["months"] = list(done)
        _write(out, doc)

    doc["months"] = run.bench_history(first, months, stack, on_month=keep)
    _write(out, doc)
    return all(m["returncode"] == 0 for m in doc["months"])


def _print(doc: dict) -> None:
    from trivsel.bench import run, targets

    results = doc["scales"]
    print()
    print(targets.header(doc))
    print()
    print(targets.table(doc))
    if not results:
        return
    print()
    print(f"stages ({results[0]['dag'].get('mode', '?')}): seconds (union of each stage's windows), peak RSS of "
          "the scheduler's process tree (MB), growth per doubling of input")
    print(run.summary_table(results))
    for r in results + ([doc["history_base"]] if doc.get("history_base") else []):
        print(f"scale {r['scale']:g}: {r['generated']['files']} files, {r['generated']['bytes'] / 2**20:.0f} MB, "
              f"input rows {r['generated']['rows']}, raw rows loaded {r['dag']['raw_rows_loaded']}, "
              f"DAG {'ok' if r['dag']['returncode'] == 0 else 'FAILED'} {r['dag']['task_states']}")
    for m in doc.get("months") or []:
        print(f"month {m['months_loaded_before'] + 1} ({m['period']}): {m['wall_seconds']:.1f}s, history "
              f"{m['history']}, by stage {m['ratio_by_stage']}")


def _memory_gb() -> float:
    import psutil

    return round(psutil.virtual_memory().total / 1024 ** 3, 1)


def _write(path: Path, doc: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    tmp.replace(path)


if __name__ == "__main__":
    sys.exit(main())
