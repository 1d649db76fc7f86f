"""The ingest's lanes: a few batches of (municipality, period) jobs, each loaded in one task instance (issue 15).

Why lanes. `ingest` was mapped over every municipality × period: 98 task instances in a national month, each
paying Airflow's fixed cost of a task instance (~1.5 slot-seconds idle on 2 cores, docs/scaling.md "The fixed
cost of a task instance") while the loading itself of a scale-0.1 municipality takes a fraction of that. A
lane loads its municipalities one after another in one task instance, so the fixed cost is paid once per lane.

How many. `settings.ingest_lanes` in config/municipalities.yml; default twice the cores: with the LocalExecutor's
parallelism matched to the cores, two lanes per slot let a slot that drew the lighter lanes take another one,
so one large municipality whose weight was underestimated does not leave a slot idle to the end.

How they are balanced. By what is known cheaply before the load: the bytes in each municipality's inbox for
the run's periods (its undated files and its period folders; a stat per file, no read). Greedy, biggest first,
each into the lightest lane so far (the LPT rule). A municipality's jobs of every period stay in one lane, in
period order: the jobs of one municipality never race each other for its period locks or its undated files. A
municipality fetched only from remote locations has an empty inbox before its pull: weight 0, so it is spread
by the same rule over the lanes that are lightest.

A run of one municipality (`params.municipality`) is one lane of that municipality's jobs.
"""

from __future__ import annotations

import os
from pathlib import Path

from trivsel import settings

#: Airflow stores a rendered map index in a String(250) column (task_instance.rendered_map_index)
MAX_LABEL = 250


def lane_count(configured: object = None, cores: int | None = None) -> int:
    """settings.ingest_lanes if set (a positive integer), else twice the cores (at least 2)."""
    if configured is not None:
        if isinstance(configured, bool) or not isinstance(configured, int) or configured < 1:
            raise ValueError(f"settings.ingest_lanes must be a positive integer, not {configured!r}")
        return configured
    return 2 * max(1, cores or os.cpu_count() or 1)


def _bytes_under(folder: Path, periods: list[str]) -> int:
    """The bytes of the files directly in a source folder (undated: taken into the run's period) and in its
    period folders of the run's periods."""
    total = 0
    for where in (folder, *(folder / p for p in periods)):
        try:
            with os.scandir(where) as entries:
                total += sum(e.stat().st_size for e in entries if e.is_file() and not e.name.startswith("."))
        except (FileNotFoundError, NotADirectoryError):
            continue
    return total


def inbox_bytes(codes: list[str], periods: list[str]) -> dict[str, int]:
    """{code: bytes in its inbox for these periods, over every source}: the lanes' weights."""
    root = settings.inbox_root()
    return {code: sum(_bytes_under(root / code / source, periods) for source in settings.SOURCES)
            for code in codes}


def _periods_text(periods: list[str]) -> str:
    return periods[0] if len(periods) == 1 else f"{periods[0]}..{periods[-1]} ({len(periods)} periods)"


def label(codes: list[str], periods: list[str], names: dict[str, str], index: int, of: int) -> str:
    """The lane's map index as the UI shows it: one municipality as `169 Høje-Taastrup 2013-01` (what a
    per-municipality ingest showed); several as `lane 2/4: 101 147 151 … 2013-01`, cut to Airflow's 250
    characters with the count of the codes that did not fit."""
    if len(codes) == 1:
        return f"{codes[0]} {names.get(codes[0], '')} {_periods_text(periods)}"[:MAX_LABEL]
    head, tail = f"lane {index}/{of}: ", f" {_periods_text(periods)}"
    shown: list[str] = []
    for i, code in enumerate(codes):
        rest = len(codes) - i - 1
        more = f" +{rest} more" if rest else ""
        if len(head + " ".join([*shown, code]) + more + tail) > MAX_LABEL:
            return head + " ".join(shown) + f" +{len(codes) - i} more" + tail
        shown.append(code)
    return head + " ".join(shown) + tail


def split(codes: list[str], periods: list[str], names: dict[str, str], lanes: int,
          weights: dict[str, int] | None = None) -> list[dict]:
    """The lanes `ingest` is mapped over: at most `lanes` (never more than there are municipalities, never an
    empty one), each {"label", "jobs": [{"code", "name", "period"}, ...]}; a municipality's jobs in one lane,
    in period order; the lanes' municipalities in the plan's order. Balanced by `weights` (default: all 0,
    which is round-robin), biggest first into the lightest lane; ties go to the lowest lane, so the split is
    the same for the same inputs."""
    if lanes < 1:
        raise ValueError(f"lanes must be at least 1, not {lanes}")
    weights = weights or {}
    n = min(lanes, len(codes))
    load = [0] * n
    members: list[list[str]] = [[] for _ in range(n)]
    order = {c: i for i, c in enumerate(codes)}
    for code in sorted(codes, key=lambda c: (-weights.get(c, 0), order[c])):
        lightest = min(range(n), key=lambda i: (load[i], len(members[i]), i))
        members[lightest].append(code)
        load[lightest] += weights.get(code, 0)
    out = []
    for i, mine in enumerate(members, start=1):
        mine.sort(key=order.__getitem__)
        jobs = [{"code": c, "name": names.get(c, ""), "period": p} for c in mine for p in periods]
        out.append({"label": label(mine, periods, names, i, n), "jobs": jobs})
    return out


def plan_lanes(p: dict, names: dict[str, str], configured: object = None) -> list[dict]:
    """The DAG's lanes task: split(plan's codes and periods) by inbox bytes into lane_count(configured) lanes."""
    return split(p["codes"], p["periods"], names, lane_count(configured), inbox_bytes(p["codes"], p["periods"]))


# ---- what a lane records of its jobs (audit.ingest_failure) ---------------------------------------------------

def clear_failures(conn, run_id: str, jobs: list[dict]) -> None:
    """Delete the rows of these jobs for the run: a lane's retry records again what it finds."""
    conn.execute("delete from audit.ingest_failure where run_id = %s and (municipality_code, period) in"
                 " (select * from unnest(%s::text[], %s::text[]))",
                 (run_id, [j["code"] for j in jobs], [j["period"] for j in jobs]))


def record_failure(conn, run_id: str, code: str, period: str, kind: str, lines: list[str]) -> None:
    """One job's finding: `quarantined` (its parse quarantines' lines) or `error` (one masked line)."""
    conn.execute("insert into audit.ingest_failure (run_id, municipality_code, period, kind, lines)"
                 " values (%s, %s, %s, %s, %s) on conflict (run_id, municipality_code, period) do update"
                 " set kind = excluded.kind, lines = excluded.lines, recorded_at = now()",
                 (run_id, code, period, kind, lines))


def failures(conn, run_id: str, codes: list[str], kinds: tuple[str, ...] = ("quarantined", "error")
             ) -> dict[str, list[str]]:
    """{municipality: [reason lines]} of the run's ingest jobs that quarantined a file or failed
    (audit.ingest_failure), in period order; what the verdict names (trivsel.verdict.reasons)."""
    out: dict[str, list[str]] = {}
    for code, period, kind, lines in conn.execute(
            "select municipality_code, period, kind, lines from audit.ingest_failure where run_id = %s"
            " and municipality_code = any(%s) and kind = any(%s) order by 1, 2",
            (run_id, codes, list(kinds))).fetchall():
        what = "could not be parsed (quarantined)" if kind == "quarantined" else "the load failed"
        out.setdefault(code, []).extend(f"{period}: {what}: {line}" for line in lines)
    return out
