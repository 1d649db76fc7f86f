"""The report's sections: certified rows (trivsel.report.data) → Jinja2 templates (templates/report/).

Each section function gathers what its template needs and renders it; the templates hold every tag. Every
configured municipality appears in every section: with its figures, or with a line saying that nothing
came ("ikke leveret (not delivered)") or that what came was rejected, never silently absent.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from trivsel.config import load_config
from trivsel.report import charts, data
from trivsel.report.labels import (
    ALL,
    METRICS,
    NOTHING_USABLE,
    REGISTERS,
    STATUS,
    TEMPLATES,
    bi,
    break_caveat,
    fmt,
    pct_label,
    phrase,
    plain_note,
    status_label,
    wording,
)

BASE_COLOUR, FOLLOW_COLOUR = "#9bb7d4", "#1f4e79"
FAVOURABLE = ("Positive svar", "favourable answers")


def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html", "svg", "j2"]),
                      undefined=StrictUndefined, trim_blocks=False, lstrip_blocks=False, keep_trailing_newline=False)
    env.globals.update(bi=bi, fmt=fmt, phrase=phrase, status_label=status_label, nothing_usable=NOTHING_USABLE)
    return env


ENV = _env()


def _render(template: str, **context: Any) -> Markup:
    return Markup(ENV.get_template(template).render(**context))


def _namer(names: dict[str, str]):
    return lambda code: names.get(code, code)


def _municipalities(names: dict[str, str], rows: list[dict]) -> list[str]:
    """The configured municipalities (names), then any other that has rows, in code order."""
    codes = [c for c in names if c != ALL]
    extra = sorted({r["municipality_code"] for r in rows} - set(codes) - {ALL})
    return codes + extra


def _missing_text(statuses: set[str], source: str) -> Markup:
    """Why a municipality has no rows in a section: rejected, waiting or (the default) not delivered."""
    for status in ("quarantined", "waiting", "overdue"):
        if status in statuses:
            return status_label(status)
    return status_label("not_delivered")


# ---------------------------------------------------------------- charts


def bar_chart(title: str, categories: list[str], series: list[tuple[str, str, list[float | None]]],
              uid: str = "c0", css_class: str = "chart", **titles: str) -> Markup:
    """Grouped vertical bars (one group per answer category, one bar per series), values 0–1 as %. A None
    value (suppressed) is a hatched grey band with a legend entry, never a bar of height 0."""
    chart = charts.layout(title, categories, series, css_class=css_class, uid=uid, **titles)
    return _render("chart.svg.j2", c=chart)


# ---------------------------------------------------------------- sections


def section_response(conn, names: dict[str, str], base: str, follow: str, minimum: float) -> Markup:
    rows = data.response_rates(conn, base, follow)
    present = {r["municipality_code"] for r in rows}
    missing = [c for c in names if c != ALL and c not in present]
    return _render("response.html.j2", rows=rows, mp=f"{minimum * 100:.0f} %", name=_namer(names), missing=missing)


def _item_charts(item: str, rows: list[dict], shares: dict, names: dict[str, str], base: str, follow: str,
                 counter: list[int]) -> list[Markup]:
    out = []
    scopes = [r["municipality_code"] for r in rows if r["municipality_code"] != ALL] + [ALL]
    by_scope = {r["municipality_code"]: r for r in rows}
    for scope in scopes:
        b = shares.get((item, scope, base), [])
        f = shares.get((item, scope, follow), [])
        cats = [c for c, _ in (b or f)]
        title = "Alle kommuner (all municipalities)" if scope == ALL else names.get(scope, scope)
        b_vals = [v for _, v in b] or [None] * len(cats)
        f_vals = [v for _, v in f] or [None] * len(cats)
        counter[0] += 1
        if cats and any(v is not None for v in (*b_vals, *f_vals)):
            out.append(bar_chart(title, cats, [(base, BASE_COLOUR, b_vals), (follow, FOLLOW_COLOUR, f_vals)],
                                 uid=f"c{counter[0]}"))
            continue
        # the distribution is withheld (all or nothing): draw the favourable share where it is published
        change = by_scope.get(scope) or {}
        fav = (change.get("pct_favourable_baseline"), change.get("pct_favourable_followup"))
        if any(v is not None for v in fav):
            out.append(bar_chart(f"{title}: {FAVOURABLE[0].lower()} ({FAVOURABLE[1]})",
                                 [f"{FAVOURABLE[0]} ({FAVOURABLE[1]})"],
                                 [(base, BASE_COLOUR, [_share(fav[0])]), (follow, FOLLOW_COLOUR, [_share(fav[1])])],
                                 uid=f"c{counter[0]}", css_class="chart favourable",
                                 y_title="Andel positive svar, % (share favourable)",
                                 x_title=str(phrase("favourable_chart").striptags())))
        elif cats:  # nothing of it may be published: say so in the chart (hatched bands), never leave it out
            out.append(bar_chart(title, cats, [(base, BASE_COLOUR, b_vals), (follow, FOLLOW_COLOUR, f_vals)],
                                 uid=f"c{counter[0]}"))
    return out


def _share(value: Any) -> float | None:
    """pct_favourable as a share 0–1 (certified publishes it as a percentage or a share)."""
    if value is None:
        return None
    v = float(value)
    return v / 100 if v > 1 else v


def section_items(conn, names: dict[str, str], base: str, follow: str,
                  level: float | None = None) -> tuple[Markup, int]:
    changes = data.item_changes(conn, base, follow)
    if level is None:
        # the level the statistics tested at, as the certified rows record it (settings.significance_level
        # when they were computed); the configured one when the rows carry none (certified v1)
        level = next((float(c["significance_level"]) for c in changes if c.get("significance_level") is not None),
                     float(load_config().settings.get("significance_level", 0.05)))
    dist = data.distributions(conn, base, follow)
    has_mdd = "mdd" in data.columns(conn, "survey_item_change")
    by_item: dict[str, list[dict]] = defaultdict(list)
    for c in changes:
        by_item[c["item_code"]].append(c)
    shares: dict[tuple[str, str, str], list[tuple[str, Any]]] = defaultdict(list)
    for d in dist:
        shares[(d["item_code"], d["municipality_code"], d["round"])].append(
            (f'{d["answer_label"]} ({d["answer_label_en"]})', d["share_of_answers"]))
    counter = [0]
    significant = []
    for code, rows in by_item.items():
        if not any(r["significant"] for r in rows):
            continue
        first = rows[0]
        significant.append({"code": code, "text_da": first["text_da"], "text_en": first["text_en"],
                            "dimension_da": first["dimension_da"], "dimension_en": first["dimension_en"],
                            "rows": rows, "charts": _item_charts(code, rows, shares, names, base, follow, counter)})
    rest = [next((r for r in by_item[i] if r["municipality_code"] == ALL), by_item[i][0])
            for i in sorted(set(by_item) - {s["code"] for s in significant})]
    html = _render("items.html.j2", significant=significant, rest=rest, base=base, follow=follow,
                   level=pct_label(level), level_en=f"{level:g}", has_mdd=has_mdd, name=_namer(names))
    return html, sum(len(s["charts"]) for s in significant)


def small_cell_rule(threshold: int, units: dict[str, str]) -> Markup:
    """The disclosure rule in the words of what it counts (docs/disclosure.md): persons behind a cell, per
    domain (settings.small_cell_units), and episode counts published with a mark."""
    survey = units.get("survey", "svar")
    absence = units.get("absence", "medarbejdere")
    return (bi(f"Tal bag færre end {threshold} {survey} (spørgeskema) eller færre end {threshold} {absence} "
               f"(sygefravær) er undertrykt (–)",
               f"Figures behind fewer than {threshold} respondents (survey) or {threshold} employees (sick leave)"
               f" are suppressed (–)") + Markup(". ")
            + bi(f"Antal episoder tæller hændelser, ikke personer: de vises, og tal under {threshold} er markeret °",
                 f"Episode counts count events, not persons: they are shown, and counts below {threshold} are "
                 f"marked °") + Markup("."))


def section_absence(conn, names: dict[str, str]) -> Markup:
    years = data.absence_years(conn)
    changes = data.absence_changes(conn)
    has_ci = "change_ci_low" in data.columns(conn, "absence_change")
    grouped: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in years:
        grouped[(r["municipality_code"], r["metric"])].append(r)
    groups = []
    for (code, metric), rows in grouped.items():
        units = list(dict.fromkeys(r["unit_name"] for r in rows))
        cells: dict[str, dict[int, dict]] = defaultdict(dict)
        for r in rows:
            cells[r["unit_name"]][r["year"]] = {**r, "break_text": _break_text(r.get("break_id"))}
        unit_rows = []
        for unit in units:
            ch = next((c for c in changes if c["municipality_code"] == code and c["unit_name"] == unit
                       and c["metric"] == metric), None)
            if ch is not None:
                ch = {**ch, "reason_text": plain_note(ch.get("reason"))}
            label = bi("Gennemsnit", "Average") if unit == "(average)" else unit
            unit_rows.append({"label": label, "cells": cells[unit], "change": ch})
        groups.append({"name": names.get(code, code), "metric_label": bi(*METRICS.get(metric, (metric, metric))),
                       "years": sorted({r["year"] for r in rows}), "units": unit_rows})
    present = {code for code, _ in grouped}
    statuses = data.source_statuses(conn, "hr_absence")
    missing = [{"name": names.get(c, c), "text": _missing_text(statuses.get(c, set()), "hr_absence")}
               for c in names if c != ALL and c not in present]
    return _render("absence.html.j2", groups=groups, missing=missing, has_ci=has_ci)


def _break_text(break_id: str | None) -> str:
    return str(break_caveat(break_id).striptags()) if break_id else ""


def section_incidents(conn, names: dict[str, str]) -> Markup:
    rows = data.incident_years(conn)
    changes = data.incident_changes(conn)
    has_ci = "rate_ratio_ci_low" in data.columns(conn, "incident_rate_change")
    coverage = data.coverage_gaps(conn, ("incidents", "use_of_force"))
    statuses = data.source_statuses(conn, "incidents")
    grouped: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        grouped[r["municipality_code"]].append(r)
    municipalities = []
    for code in _municipalities(names, rows):
        rs = grouped.get(code, [])
        registers = []
        for reg in dict.fromkeys(r["register"] for r in rs):
            cell = {r["year"]: r for r in rs if r["register"] == reg}
            caveats: list[Markup] = []
            for r in cell.values():
                if r.get("break_id") or r.get("break_description"):
                    text = break_caveat(r.get("break_id"), r.get("break_description"))
                    if text not in caveats:
                        caveats.append(text)
            excluded = sum(r["n_excluded"] or 0 for r in cell.values())
            if excluded:
                caveats.append(phrase("excluded_caveat", n=excluded))
            registers.append({"label": bi(*REGISTERS.get(reg, (reg, reg))), "cells": cell, "caveats": caveats})
        municipalities.append({"name": names.get(code, code), "years": sorted({r["year"] for r in rs}),
                               "registers": registers,
                               "missing": _missing_text(statuses.get(code, set()), "incidents")})
    change_rows = []
    for c in changes:
        caveats = []
        if c["status"] in STATUS:
            caveats.append(status_label(c["status"]))
        if c["crosses_break"]:
            caveats.append(break_caveat(c.get("break_id"), c.get("break_description")))
        if c["note"]:
            caveats.append(plain_note(c["note"]))
        change_rows.append({**c, "caveats": caveats, "register_label": bi(*REGISTERS.get(c["register"],
                                                                                        (c["register"],) * 2))})
    sources = wording().get("sources") or {}
    gaps = [{**r, "source_label": bi(sources.get(r["source"], {}).get("da", r["source"]),
                                     sources.get(r["source"], {}).get("en", r["source"]))} for r in coverage]
    return _render("incidents.html.j2", municipalities=municipalities, changes=change_rows, coverage=gaps,
                   has_ci=has_ci, name=_namer(names))


# ---------------------------------------------------------------- the page


def render(conn, baseline: str | None = None, followup: str | None = None) -> tuple[str, dict[str, int]]:
    config = load_config()
    names = {m.code: m.name for m in config.municipalities}
    minimum = float(config.settings.get("minimum_response_rate", 0.60))
    if not (baseline and followup):
        default = data.default_pair(conn, config.survey_rounds)
        baseline, followup = baseline or default[0], followup or default[1]
    baseline = data.resolve_round(conn, baseline, "baseline")
    followup = data.resolve_round(conn, followup, "followup")
    unknown = [r for r in (baseline, followup) if config.survey_rounds and r not in config.survey_rounds]
    if unknown:
        raise RuntimeError(f"unknown survey round {unknown[0]!r}: settings.survey_rounds has "
                           f"{', '.join(config.survey_rounds)}")
    pub = data.latest_publication(conn)
    all_names = {**names, ALL: "Alle kommuner (all)"}
    items, n_charts = section_items(conn, all_names, baseline, followup)
    threshold = int(pub["small_cell_threshold"]) if pub else int(config.settings.get("small_cell_threshold", 5))
    page = _render(
        "report.html.j2", css=Markup((TEMPLATES / "style.css").read_text(encoding="utf-8")),
        baseline=baseline, followup=followup,
        municipalities=", ".join(f"{m.name} ({m.code})" for m in config.municipalities),
        publication_period=pub["period"] if pub else "–",
        publication_at=pub["certified_at"].isoformat(timespec="minutes") if pub else "–",
        rule=small_cell_rule(threshold, dict(config.settings.get("small_cell_units") or {})),
        response=section_response(conn, all_names, baseline, followup, minimum), items=items,
        incidents=section_incidents(conn, names), absence=section_absence(conn, names),
        generated=datetime.now().astimezone().isoformat(timespec="minutes"))
    return str(page) + "\n", {"charts": n_charts}
