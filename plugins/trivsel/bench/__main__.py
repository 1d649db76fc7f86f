"""`python -m trivsel.bench` (make bench): the national-month benchmark. See docs/scaling.md.

    python -m trivsel.bench                       scales 1, 2, 4; figures to bench/results.json
    python -m trivsel.bench --scales 0.02         a quick look while developing
    python -m trivsel.bench --months 12           also, after scale 1: 12 months loaded, the 13th against the first

Every scale empties the warehouse's raw, audit and quarantine tables and the inbox, so by default it keeps its
own state in .local/bench with the embedded warehouse on port 55439; set TRIVSEL_HOME and TRIVSEL_PG_PORT to
put it elsewhere (never on a warehouse whose data you need).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

from trivsel import settings


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m trivsel.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scales", type=float, nargs="+", default=[1, 2, 4])
    p.add_argument("--period", default="2015-12")
    p.add_argument("--months", type=int, default=0,
                   help="after the first scale, load this many months more, then compare the next with the first")
    p.add_argument("--out", default=str(settings.ROOT / "bench" / "results.json"))
    p.add_argument("--report", action="store_true", help="only print the table of an existing --out file")
    args = p.parse_args(argv)
    if args.report:
        doc = json.loads(Path(args.out).read_text())
        _print(doc)
        return 0
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    # Never the demo's warehouse: every scale empties raw, audit and quarantine.
    if "TRIVSEL_HOME" not in os.environ:
        os.environ["TRIVSEL_HOME"] = str(settings.ROOT / ".local" / "bench")
        os.environ.setdefault("TRIVSEL_PG_PORT", "55439")

    from trivsel.bench import generate as gen
    from trivsel.bench import run

    config = gen.write_config(settings.home() / "bench" / "municipalities.yml")
    os.environ["TRIVSEL_CONFIG"] = str(config)
    os.environ.setdefault("TRIVSEL_TASK_RETRIES", "0")  # a failure shows at once, not after backoff
    print(f"trivsel bench: TRIVSEL_HOME={settings.home()} config={config} cpus={os.cpu_count()}", flush=True)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"machine": {"cpu_count": os.cpu_count(), "memory_gb": _memory_gb()}, **run.git_commit(),
           "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "period": args.period,
           "scales": [], "months": None}
    results = []
    months = None
    for scale in args.scales:
        results.append(run.bench_scale(scale, args.period, out.parent))
        doc["scales"] = results
        _write(out, doc)
        if args.months and months is None:
            # on top of the first scale's month, still in the warehouse (the next scale empties it)
            months = run.bench_history(results[0], args.months)
            doc["months"] = months
            _write(out, doc)
    doc["targets"] = run.targets(results, months)
    doc["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    _write(out, doc)

    _print(doc)
    print(f"\nfigures: {out}")
    return 0 if all(r["dag"]["returncode"] == 0 for r in results) else 1


def _print(doc: dict) -> None:
    from trivsel.bench import run

    results = doc["scales"]
    targets = doc.get("targets") or run.targets(results, doc.get("months"))
    print()
    print(f"trivsel bench, commit {doc.get('commit', '?')[:10]}{' (dirty)' if doc.get('dirty') else ''}, "
          f"{doc['machine']['cpu_count']} cpus; seconds, peak RSS of the `airflow dags test` process tree (MB), "
          f"growth per doubling of input")
    print(run.summary_table(results))
    for r in results:
        print(f"scale {r['scale']:g}: {r['generated']['files']} files, {r['generated']['bytes'] / 2**20:.0f} MB, "
              f"input rows {r['generated']['rows']}, raw rows loaded {r['dag']['raw_rows_loaded']}, "
              f"DAG {'ok' if r['dag']['returncode'] == 0 else 'FAILED'} {r['dag']['task_states']}")
    print()
    for name, t in targets.items():
        value = t["value"]
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items() if v is not None)
        print(f"{'MET    ' if t['met'] else 'NOT MET'} {name}: {value}")
    if not (doc.get("months") or {}).get("ratio_whole"):
        print("NOT MEASURED month_13_le_1.2x_first (python -m trivsel.bench --months 12)")


def _memory_gb() -> float:
    import psutil

    return round(psutil.virtual_memory().total / 1024 ** 3, 1)


def _write(path: Path, doc: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    tmp.replace(path)


if __name__ == "__main__":
    sys.exit(main())
