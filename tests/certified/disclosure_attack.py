"""An evaluator who does arithmetic: recover suppressed cells from the certified tables (issue 13).

The attacker sees only published rows (read as the role `evaluator`) plus, as a worst case, each published
wave's sum of squared answers (the t-test's p-value and Hedges' g determine it). It solves
- every answer distribution: exhaustive integer search over the suppressed categories (trivsel.disclosure
  .solutions) with everything published about the same cell: its total n (from any table: the distribution's
  total, survey_item_change's n_baseline/n_followup), the published categories, the mean, pct_favourable;
- the margin 'ALL' = Σ municipalities, per category, joining the candidate sets of every distribution;
- the response rates' margin 'ALL' = Σ municipalities, by linear programming (min and max of each
  suppressed count);
- sick leave: unit figures, the unweighted '(average)' and the changes (follow-up − mean of baseline
  years) as one linear system per municipality × metric; a suppressed figure in the row space is recovered.

It returns the cells it pinned to one value; the test compares them with the truth.
"""

from __future__ import annotations

import math
from collections import defaultdict
from itertools import product
from typing import Any

import numpy as np
from scipy.optimize import linprog

from trivsel import disclosure

Key = tuple  # (scope, wave-or-round, item)
MAX_JOINT = 200_000


def dist_key(row: dict[str, Any]) -> Key:
    return (row["municipality_code"], row.get("round") or row["wave"], row["item_code"])


def _side_keys(change: dict[str, Any]) -> list[tuple[Key, str]]:
    out = []
    for side in ("baseline", "followup"):
        period = change.get(f"{side}_round") or change.get(f"{side}_wave")
        out.append(((change["municipality_code"], period, change["item_code"]), side))
    return out


def survey_candidates(dist_rows: list[dict], change_rows: list[dict], squares: dict[Key, int],
                      scale: dict[str, int]) -> dict[Key, np.ndarray]:
    """Per distribution: every count vector consistent with what is published about that one cell."""
    cats: dict[Key, dict[int, int | None]] = defaultdict(dict)
    n_known: dict[Key, int] = {}
    for r in dist_rows:
        k = dist_key(r)
        if r["is_total"]:
            if r["n_answers"] is not None:
                n_known[k] = int(r["n_answers"])
        else:
            cats[k][int(r["answer_ordinal"])] = None if r["n_answers"] is None else int(r["n_answers"])
    means: dict[Key, float] = {}
    favs: dict[Key, float] = {}
    for c in change_rows:
        for k, side in _side_keys(c):
            if c[f"n_{side}"] is not None:
                n_known[k] = int(c[f"n_{side}"])
            if c[f"mean_{side}"] is not None:
                means[k] = float(c[f"mean_{side}"])
            if c[f"pct_favourable_{side}"] is not None:
                favs[k] = float(c[f"pct_favourable_{side}"])
    _infer_margin_totals(n_known, cats)
    out: dict[Key, np.ndarray] = {}
    for k, by_ord in cats.items():
        kk = scale.get(k[2], max(by_ord))
        known = {o: v for o, v in by_ord.items() if v is not None}
        if len(known) == len(by_ord):
            out[k] = np.array([[by_ord[o] for o in range(1, kk + 1)]])
            continue
        n = n_known.get(k)
        if n is None:
            continue  # nothing to search over
        grid = _candidates(n, kk, known, means.get(k), squares.get(k) if k in means else None)
        if grid is None:
            continue  # too many candidates to enumerate: counted in the test's report, never as safe
        if k in favs:
            grid = grid[grid[:, kk - 2:].sum(axis=1) == round(favs[k] * n)]
        out[k] = grid
    return out


def _infer_margin_totals(n_known: dict[Key, int], cats: dict[Key, dict]) -> None:
    """n of 'ALL' − the published n of the others, from whichever table published them: one unknown left is
    known."""
    groups: dict[tuple, list[Key]] = defaultdict(list)
    for k in cats:
        if k[0] != "ALL":
            groups[(k[1], k[2])].append(k)
    for (period, item), members in groups.items():
        total = n_known.get(("ALL", period, item))
        unknown = [m for m in members if m not in n_known]
        if total is not None and len(unknown) == 1:
            n_known[unknown[0]] = total - sum(n_known[m] for m in members if m in n_known)


def _grid(total: int, width: int) -> np.ndarray | None:
    """Every vector of `width` non-negative integers with sum ≤ total (None when too many to list)."""
    if width == 0:
        return np.zeros((1, 0), dtype=np.int64)
    if (total + 1) ** width > 3_000_000:
        return None
    g = np.indices((total + 1,) * width).reshape(width, -1).T.astype(np.int64)
    return g[g.sum(axis=1) <= total]


def _candidates(n: int, k: int, known: dict[int, int], mean: float | None,
                squares: int | None) -> np.ndarray | None:
    """Count vectors over ordinals 1..k with Σ = n, the known categories fixed, and the mean and the sum of
    squares where known: the last two (or one) unknown categories follow from the equations, the others
    are enumerated."""
    ords = np.arange(1, k + 1)
    unknown = [o for o in range(1, k + 1) if o not in known]
    rest_n = n - sum(known.values())
    rest_s = None if mean is None else round(mean * n) - sum(o * c for o, c in known.items())
    rest_q = None if squares is None else squares - sum(o * o * c for o, c in known.items())
    solved = unknown[-(1 + (rest_s is not None) + (rest_q is not None)):] if unknown else []
    solved = solved[-len(unknown):]
    free = [o for o in unknown if o not in solved]
    grid = _grid(rest_n, len(free))
    if grid is None:
        return None
    fo = np.array(free, dtype=np.int64)
    rhs = [rest_n - grid.sum(axis=1)]
    rows = [np.ones(len(solved))]
    if rest_s is not None:
        rhs.append(rest_s - grid @ fo)
        rows.append(np.array(solved, float))
    if rest_q is not None:
        rhs.append(rest_q - grid @ fo ** 2)
        rows.append(np.array(solved, float) ** 2)
    m = len(solved)
    a = np.array(rows[:m])
    b = np.stack(rhs[:m], axis=1).astype(float)
    x = np.linalg.solve(a, b.T).T if m else np.zeros((len(grid), 0))
    xi = np.rint(x).astype(np.int64)
    ok = (np.abs(x - xi) < 1e-6).all(axis=1) & (xi >= 0).all(axis=1)
    for extra_rows, extra_rhs in zip(rows[m:], rhs[m:], strict=True):  # more equations than unknowns
        ok &= np.abs(xi @ extra_rows - extra_rhs) < 1e-6
    full = np.zeros((len(grid), k), dtype=np.int64)
    for o, c in known.items():
        full[:, o - 1] = c
    for j, o in enumerate(free):
        full[:, o - 1] = grid[:, j]
    for j, o in enumerate(solved):
        full[:, o - 1] = xi[:, j]
    del ords
    return full[ok]


def join_margins(cands: dict[Key, np.ndarray], all_keys: set[Key]) -> dict[Key, np.ndarray]:
    """'ALL' = Σ municipalities per category: keep only the candidates that take part in a joint solution.
    `all_keys`: every distribution published (a group with a member not searched is left as it is)."""
    groups: dict[tuple, list[Key]] = defaultdict(list)
    for k in all_keys:
        groups[(k[1], k[2])].append(k)
    out = dict(cands)
    for (period, item), keys in groups.items():
        all_key = ("ALL", period, item)
        members = [k for k in keys if k[0] != "ALL"]
        if all_key not in cands or not members or any(m not in cands for m in members):
            continue
        sizes = [len(cands[k]) for k in members]
        if math.prod(sizes) > MAX_JOINT:
            refined = _join_by_sums(cands, members, all_key)
            if refined is not None:
                out.update(refined)
            continue
        all_set = {tuple(v) for v in cands[all_key]}
        keep: dict[Key, set] = {k: set() for k in [*members, all_key]}
        for combo in product(*(range(s) for s in sizes)):
            vecs = [cands[m][i] for m, i in zip(members, combo, strict=True)]
            total = tuple(np.sum(vecs, axis=0))
            if total in all_set:
                for m, v in zip(members, vecs, strict=True):
                    keep[m].add(tuple(v))
                keep[all_key].add(total)
        for k, vs in keep.items():
            out[k] = np.array(sorted(vs), dtype=np.int64).reshape(-1, cands[k].shape[1])
    return out


def _minkowski(sets: list[set[tuple]]) -> set[tuple] | None:
    sums: set[tuple] = {tuple([0] * len(next(iter(sets[0]))))} if sets and sets[0] else set()
    for vs in sets:
        sums = {tuple(a + b for a, b in zip(s, v, strict=True)) for s in sums for v in vs}
        if len(sums) > MAX_JOINT:
            return None
    return sums


def _join_by_sums(cands: dict[Key, np.ndarray], members: list[Key], all_key: Key) -> dict[Key, np.ndarray] | None:
    """The same join for large candidate sets: a member's vector x stays if ALL − x is a sum of the others'."""
    sets = {k: {tuple(int(x) for x in v) for v in cands[k]} for k in [*members, all_key]}
    out = {}
    feasible_all: set[tuple] = set()
    for m in members:
        others = _minkowski([sets[o] for o in members if o != m]) if len(members) > 1 else {tuple([0] * cands[m].shape[1])}
        if others is None:
            return None
        if len(sets[m]) * len(sets[all_key]) > 5_000_000:
            return None
        keep = set()
        for x in sets[m]:
            for a in sets[all_key]:
                if tuple(ai - xi for ai, xi in zip(a, x, strict=True)) in others:
                    keep.add(x)
                    feasible_all.add(a)
        out[m] = np.array(sorted(keep), dtype=np.int64).reshape(-1, cands[m].shape[1])
    out[all_key] = np.array(sorted(feasible_all), dtype=np.int64).reshape(-1, cands[all_key].shape[1])
    return out


def pinned(cands: dict[Key, np.ndarray], published: dict[Key, dict[int, int | None]]) -> dict[tuple, int]:
    """(key, ordinal) → value for every suppressed category that takes one value in all candidates."""
    out = {}
    for k, grid in cands.items():
        if len(grid) == 0:
            continue
        for i in range(grid.shape[1]):
            if published.get(k, {}).get(i + 1) is None and (grid[:, i] == grid[0, i]).all():
                out[(k, i + 1)] = int(grid[0, i])
    return out


def attack_survey(dist_rows: list[dict], change_rows: list[dict], squares: dict[Key, int],
                  scale: dict[str, int]) -> dict[tuple, int]:
    published: dict[Key, dict[int, int | None]] = defaultdict(dict)
    for r in dist_rows:
        if not r["is_total"]:
            published[dist_key(r)][int(r["answer_ordinal"])] = r["n_answers"]
    cands = join_margins(survey_candidates(dist_rows, change_rows, squares, scale),
                         {dist_key(r) for r in dist_rows})
    return pinned(cands, published)


def attack_margin_lp(rows: list[dict], group: str, column: str) -> dict[tuple, int]:
    """ALL = Σ municipalities of one column (e.g. response rates' n_respondents): min = max by LP → pinned."""
    by_group: dict[Any, list[dict]] = defaultdict(list)
    for r in rows:
        by_group[r[group]].append(r)
    out = {}
    for g, rs in by_group.items():
        total = next((r for r in rs if r["municipality_code"] == "ALL"), None)
        members = [r for r in rs if r["municipality_code"] != "ALL"]
        unknown = [r for r in members if r[column] is None]
        if total is None or total[column] is None or not unknown:
            continue
        rhs = int(total[column]) - sum(int(r[column]) for r in members if r[column] is not None)
        for i, r in enumerate(unknown):
            c = np.zeros(len(unknown))
            c[i] = 1
            lo = linprog(c, A_eq=[np.ones(len(unknown))], b_eq=[rhs], bounds=(0, None))
            hi = linprog(-c, A_eq=[np.ones(len(unknown))], b_eq=[rhs], bounds=(0, None))
            if lo.success and hi.success and round(lo.fun) == round(-hi.fun):
                out[(g, r["municipality_code"], column)] = round(lo.fun)
    return out


def attack_absence(unit_years: list[dict], changes: list[dict], baseline_years: list[int],
                   followup_year: int) -> set[tuple]:
    """Suppressed unit figures (municipality, unit, metric, year) determined by the published linear system."""
    recovered = set()
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in unit_years:
        groups[(r["municipality_code"], r["metric"])].append(r)
    for (code, metric), rows in groups.items():
        units = sorted({r["unit_name"] for r in rows if not r["is_average"]})
        years = sorted({r["year"] for r in rows})
        index = {(u, y): i for i, (u, y) in enumerate(product(units, years))}
        known: dict[int, float] = {}
        for r in rows:
            if not r["is_average"] and r["value"] is not None and r["value_status"] == "reported":
                known[index[(r["unit_name"], r["year"])]] = float(r["value"])
        eqs: list[tuple[dict[int, float], float]] = []
        for r in rows:
            if r["is_average"] and r["value"] is not None:
                reported = [u for u in units if any(x["unit_name"] == u and x["year"] == r["year"]
                                                    and x["value_status"] == "reported" for x in rows)]
                if reported:
                    eqs.append(({index[(u, r["year"])]: 1 / len(reported) for u in reported}, float(r["value"])))
        for c in changes:
            if (c["municipality_code"], c["metric"]) == (code, metric) and c["change"] is not None \
                    and not c["is_average"] and c["followup_year"] == followup_year:
                coeffs = {index[(c["unit_name"], followup_year)]: 1.0}
                for y in baseline_years:
                    if (c["unit_name"], y) in index:
                        coeffs[index[(c["unit_name"], y)]] = coeffs.get(index[(c["unit_name"], y)], 0) - 1 / len(baseline_years)
                eqs.append((coeffs, float(c["change"])))
        unknown = [i for i in range(len(index)) if i not in known]
        if not unknown or not eqs:
            continue
        a = np.array([[e[0].get(i, 0.0) for i in unknown] for e in eqs])
        rank = np.linalg.matrix_rank(a)
        for j, i in enumerate(unknown):
            if not any(e[0].get(i) for e in eqs):
                continue
            # x_i is determined iff e_i lies in the row space of a
            if np.linalg.matrix_rank(np.vstack([a, np.eye(len(unknown))[j]])) == rank:
                unit, year = next(k for k, v in index.items() if v == i)
                suppressed = any(r["unit_name"] == unit and r["year"] == year and r["suppressed"] for r in rows)
                if suppressed:
                    recovered.add((code, unit, metric, year))
    return recovered


def naive_publication(truth: dict[Key, list[int]], threshold: int) -> tuple[list[dict], list[dict]]:
    """What a naive rule publishes (the control): each small category hidden, everything else shown:
    totals, the other categories, the mean and pct_favourable."""
    dist, changes = [], []
    for (scope, period, item), counts in truth.items():
        n = sum(counts)
        for o, c in enumerate(counts, 1):
            dist.append({"municipality_code": scope, "round": period, "wave": period, "item_code": item,
                         "is_total": False, "answer_ordinal": o,
                         "n_answers": None if disclosure.has_small([c], threshold) else c})
        dist.append({"municipality_code": scope, "round": period, "wave": period, "item_code": item,
                     "is_total": True, "answer_ordinal": None, "n_answers": n})
        if n:
            mean = sum(o * c for o, c in enumerate(counts, 1)) / n
            changes.append({"municipality_code": scope, "item_code": item, "baseline_round": period,
                            "followup_round": None, "n_baseline": n, "mean_baseline": mean,
                            "pct_favourable_baseline": sum(counts[-2:]) / n,
                            "n_followup": None, "mean_followup": None, "pct_favourable_followup": None})
    return dist, changes
