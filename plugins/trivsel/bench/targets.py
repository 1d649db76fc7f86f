"""Issue 15's targets as one table: each target, its figure, its limit, MET / NOT MET / NOT MEASURED.

Kept apart from the measuring (bench.run) so that the verdicts can be tested from given figures, and
`--report` can reprint them from bench/results.json without a warehouse.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

WHOLE_MONTH_LIMIT_S = 120.0
LOAD_VALIDATE_FLOOR_LIMIT = 3.0
MONTH_RATIO_LIMIT = 1.2
PEAK_MB_LIMIT = 1536.0
TIME_GROWTH_LIMIT = 2.2
MEMORY_GROWTH_LIMIT = 1.1  # "flat": within 10 % per doubling
ISSUE_MONTHS = (12, 120)  # month 13 and month 121 against month 1: listed even when a run did not measure them


def peak_mb(figures: dict) -> float | None:
    """The peak memory a target reads: the tree's PSS (shared pages counted once, trivsel.bench.run.Sampler);
    a results file from before PSS was sampled has only the RSS sum."""
    return figures.get("peak_pss_mb") or figures.get("peak_rss_mb")


def union_seconds(windows: list[tuple[float, float]]) -> float:
    """Length of the union of [start, end] intervals: tasks overlap under the executor, so their sum would
    count a second twice."""
    total = 0.0
    cur_start = cur_end = None
    for start, end in sorted((s, e) for s, e in windows if e > s):
        if cur_end is None or start > cur_end:
            if cur_end is not None:
                total += cur_end - cur_start
            cur_start, cur_end = start, end
        else:
            cur_end = max(cur_end, end)
    if cur_end is not None:
        total += cur_end - cur_start
    return total


def overhead_seconds(wall: float, task_windows: list[tuple[float, float]]) -> float:
    """Airflow's own time: the run's wall time outside every task instance (wall minus the union)."""
    return max(0.0, wall - union_seconds(task_windows))


def growth(values: list[float | None], scales: list[float] | None = None) -> float | None:
    """Growth factor per doubling of input. Without `scales`, each consecutive pair is one doubling (the
    geometric mean of their ratios); with them, each pair's ratio counts for log2(its scales' ratio) doublings,
    so that --scales 0.25 1 (two doublings) is not read as one."""
    if scales is None:
        scales = [2.0 ** i for i in range(len(values))]
    pairs = [(a, b, math.log2(sb / sa)) for a, b, sa, sb in zip(values, values[1:], scales, scales[1:], strict=False)
             if a and b and sa and sb and sb > sa]
    doublings = sum(d for _, _, d in pairs)
    if not pairs or doublings <= 0:
        return None
    return round(math.prod(b / a for a, b, _ in pairs) ** (1 / doublings), 2)


@dataclass(frozen=True)
class Row:
    target: str
    figure: str
    limit: str
    verdict: str  # MET | NOT MET | NOT MEASURED

    @property
    def met(self) -> bool | None:
        return {"MET": True, "NOT MET": False}.get(self.verdict)


def _verdict(ok: bool | None) -> str:
    return "NOT MEASURED" if ok is None else ("MET" if ok else "NOT MET")


def _at_one(scales: list[dict]) -> dict | None:
    return next((r for r in scales if r["scale"] == 1), scales[0] if scales else None)


def rows(doc: dict) -> list[Row]:
    """The target table from a results document (bench/results.json's shape)."""
    scales = doc.get("scales") or []
    at1 = _at_one(scales)
    out: list[Row] = []
    label = f" @{at1['scale']:g}" if at1 else ""
    whole = at1["stages"]["whole month"]["seconds"] if at1 else None
    mode = (at1 or {}).get("dag", {}).get("mode", "?")
    out.append(Row(f"whole national month{label} ({mode}), every stage incl. Airflow",
                   f"{whole:.1f} s" if whole is not None else "-", f"< {WHOLE_MONTH_LIMIT_S:.0f} s",
                   _verdict(None if whole is None else whole < WHOLE_MONTH_LIMIT_S)))
    ratio = (at1 or {}).get("ratio_load_validate_to_floor")
    out.append(Row(f"(load + validate) / bare COPY{label}", f"{ratio:.2f}x" if ratio is not None else "-",
                   f"<= {LOAD_VALIDATE_FLOOR_LIMIT:g}x",
                   _verdict(None if ratio is None else ratio <= LOAD_VALIDATE_FLOOR_LIMIT)))
    peer = (at1 or {}).get("peer")
    peer_ratio = (at1 or {}).get("ratio_load_validate_to_peer")
    out.append(Row(f"trivsel faster than the naive peer (pandas to_sql){label}",
                   (f"{peer_ratio:.2f}x the peer's {peer['seconds']:.1f} s (floor ratio "
                    f"{ratio:.2f}x)" if peer and peer_ratio is not None and ratio is not None else "-"),
                   "< 1x", _verdict(None if peer_ratio is None else peer_ratio < 1)))
    base = doc.get("history_base")  # month 1 again at the history's scale (--history-scale)
    for m in doc.get("months") or []:
        r = m.get("ratio_whole")
        first = m.get("first_wall_seconds")
        at = f" @{m['scale']:g}" if m.get("scale") is not None else ""
        out.append(Row(f"month {m['months_loaded_before'] + 1} / month 1{at} ({m['months_loaded_before']} months "
                       f"of history{f'; month 1{at}: {first:.1f} s' if first else ''})",
                       f"{r:.2f}x ({m['wall_seconds']:.1f} s)" if r is not None else "-",
                       f"<= {MONTH_RATIO_LIMIT:g}x", _verdict(None if r is None else r <= MONTH_RATIO_LIMIT)))
    for n in sorted(set(doc.get("months_requested") or []) | set(ISSUE_MONTHS)):
        if not any(m["months_loaded_before"] == n for m in doc.get("months") or []):
            out.append(Row(f"month {n + 1} / month 1", "-", f"<= {MONTH_RATIO_LIMIT:g}x", "NOT MEASURED"))
    peaks = ([peak_mb(r) for r in scales] + ([peak_mb(base)] if base else [])
             + [peak_mb(m) for m in doc.get("months") or []])
    peaks = [p for p in peaks if p]
    out.append(Row("peak memory (scheduler tree, PSS; every scale and month)",
                   f"{max(peaks):.0f} MB" if peaks else "-", f"< {PEAK_MB_LIMIT:.0f} MB",
                   _verdict(max(peaks) < PEAK_MB_LIMIT if peaks else None)))
    doublings = sorted((r for r in scales if r["scale"] > 0), key=lambda r: r["scale"])
    if len(doublings) > 1:
        at = [r["scale"] for r in doublings]
        tg = growth([r["stages"]["whole month"]["seconds"] for r in doublings], at)
        mg = growth([peak_mb(r) for r in doublings], at)
    else:
        tg = mg = None
    out.append(Row("time growth per doubling (whole month)", f"{tg:.2f}x" if tg else "-",
                   f"<= {TIME_GROWTH_LIMIT:g}x", _verdict(None if tg is None else tg <= TIME_GROWTH_LIMIT)))
    out.append(Row("memory growth per doubling (peak)", f"{mg:.2f}x" if mg else "-",
                   f"<= {MEMORY_GROWTH_LIMIT:g}x (flat)",
                   _verdict(None if mg is None else mg <= MEMORY_GROWTH_LIMIT)))
    return out


def table(doc: dict) -> str:
    rs = rows(doc)
    w = max(len(r.target) for r in rs)
    fw = max(len(r.figure) for r in rs)
    lines = [f"{'target':<{w}}  {'figure':<{fw}}  {'limit':<16}  verdict", "-" * (w + fw + 36)]
    lines += [f"{r.target:<{w}}  {r.figure:<{fw}}  {r.limit:<16}  {r.verdict}" for r in rs]
    return "\n".join(lines)


def header(doc: dict) -> str:
    """The table's title: commit, cores, and a warning when other processes loaded the machine."""
    m = doc.get("machine", {})
    cores = m.get("cpu_count") or 1
    loads = [m.get("load_start"), m.get("load_end")]
    busy = [x for x in loads if x] and max(x[0] for x in loads if x) > 0.5 * cores
    text = (f"trivsel bench, commit {(doc.get('commit') or '?')[:10]}{' (dirty)' if doc.get('dirty') else ''}, "
            f"{cores} cores, load average at start {_load(loads[0])}, at end {_load(loads[1])}")
    if busy:
        text += (f"\nWARNING: load average above 0.5 x cores ({0.5 * cores:g}): other processes shared the "
                 "machine, figures are slower than on an idle one")
    return text


def _load(x) -> str:
    return "/".join(f"{v:.2f}" for v in x) if x else "?"
