"""`trivsel report`: the evaluation report's chapters 5 (the survey) and 7 (sick leave, incidents) for a
baseline/follow-up pair, drawn from the certified schema as one self-contained HTML page.

Everything comes from schema certified (read as the role evaluator where the connection may take it), so
the page shows exactly what evaluators may see: suppressed cells stay hidden ("–"). Charts are inline SVG
drawn here (no scripts, no CDN): for every significant item, the answer distribution of the baseline and
the follow-up wave per municipality and for all together, as the evaluation report draws them. Labels are
Danish with English beside them.
"""

from __future__ import annotations

import html
import logging
from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from trivsel import warehouse
from trivsel.config import PERIOD_RE, load_config
from trivsel.stats import settings as stats_settings

log = logging.getLogger(__name__)

ALL = "ALL"
BASE_COLOUR, FOLLOW_COLOUR = "#9bb7d4", "#1f4e79"
METRICS = {
    "pct_whole_group": ("Sygefravær i % for hele gruppen", "Sick leave, % of the whole group"),
    "pct_per_employee": ("Sygefravær i % pr. medarbejder", "Sick leave, % per employee"),
    "days_per_employee": ("Sygedage pr. medarbejder", "Sick days per employee"),
}
REGISTERS = {
    "reported_accident": ("Anmeldte arbejdsulykker", "Reported occupational accidents"),
    "internal": ("Interne registreringer", "Internal registrations"),
    "use_of_force": ("Magtanvendelser", "Use of force"),
}
#: Every status a certified table reports, in Danish with the English beside it. Delivered, partly
#: quarantined, quarantined and not delivered are four different facts (never one "missing").
STATUS = {
    "delivered": ("leveret", "delivered"), "not_delivered": ("ikke leveret", "not delivered"),
    "quarantined": ("afvist (karantæne)", "rejected (quarantined)"),
    "partly_quarantined": ("delvist afvist", "partly rejected (quarantined)"),
    "waiting": ("afventer anden levering", "waiting for another delivery"),
    "overdue": ("forsinket", "overdue"), "unroutable": ("kunne ikke placeres", "unroutable"),
    "reported": ("indberettet", "reported"),
    "not_reported": ("ikke indberettet", "not reported"), "excluded": ("udeladt", "excluded"),
    "not_applicable": ("ikke relevant", "not applicable"),
}
#: Statuses of a year with nothing usable: shown in words instead of a count (never as 0).
NOTHING_USABLE = ("not_delivered", "quarantined", "waiting")


def status_label(status: str) -> str:
    """The status in Danish (English beside it); an unknown status as it is."""
    return bi(*STATUS.get(status, (status, status)))


def e(text: Any) -> str:
    return html.escape("" if text is None else str(text))


def bi(da: str, en: str) -> str:
    """A Danish label with the English beside it."""
    return f'{e(da)} <span class="en">({e(en)})</span>'


def fmt(value: Any, digits: int = 1, pct: bool = False, suppressed: bool = False) -> str:
    if suppressed:
        return '<span class="supp" title="diskretioneret / suppressed (small cell)">–</span>'
    if value is None:
        return ""
    if isinstance(value, bool):
        return "ja (yes)" if value else "nej (no)"
    if isinstance(value, (int,)) and not pct:
        return f"{value:d}"
    v = float(value) * (100 if pct else 1)
    return f"{v:,.{digits}f}".replace(",", " ").replace(".", ",") + (" %" if pct else "")


# ---------------------------------------------------------------- SVG


def bar_chart(title: str, categories: list[str], series: list[tuple[str, str, list[float | None]]],
              width: int = 0, height: int = 230) -> str:
    """Grouped vertical bars (one group per answer category, one bar per series), values 0–1 as %.
    A None value (suppressed) draws no bar and is marked '–'."""
    n_cat, n_ser = max(len(categories), 1), max(len(series), 1)
    group_w = 16 * n_ser + 30
    left, right, top, bottom = 42, 10, 28, 78
    width = width or left + right + group_w * n_cat
    plot_h = height - top - bottom
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{e(title)}">',
             f'<text x="{left}" y="16" class="ct">{e(title)}</text>']
    for tick in (0, 25, 50, 75, 100):
        y = top + plot_h * (1 - tick / 100)
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
                     f'<text x="{left - 4}" y="{y + 3:.1f}" class="tick" text-anchor="end">{tick} %</text>')
    for ci, cat in enumerate(categories):
        gx = left + ci * group_w + 15
        for si, (_, colour, values) in enumerate(series):
            v = values[ci] if ci < len(values) else None
            x = gx + si * 16
            if v is None:
                parts.append(f'<text x="{x + 7}" y="{top + plot_h - 3}" class="tick" text-anchor="middle">–</text>')
                continue
            h = plot_h * float(v)
            parts.append(f'<rect x="{x}" y="{top + plot_h - h:.1f}" width="14" height="{h:.1f}" fill="{colour}">'
                         f'<title>{e(cat)}: {float(v) * 100:.0f} %</title></rect>')
        label = cat if len(cat) <= 18 else cat[:17] + "…"
        cx = gx + 8 * n_ser
        parts.append(f'<text x="{cx}" y="{top + plot_h + 12}" class="tick" text-anchor="end" '
                     f'transform="rotate(-35 {cx} {top + plot_h + 12})">{e(label)}</text>')
    lx = left
    for name, colour, _ in series:
        parts.append(f'<rect x="{lx}" y="{height - 14}" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{lx + 14}" y="{height - 5}" class="tick">{e(name)}</text>')
        lx += 14 + 8 * len(name) + 12
    parts.append("</svg>")
    return "".join(parts)


# ---------------------------------------------------------------- data


def _connect(url: str | None):
    """The report reads only what an evaluator may read: it logs in as `evaluator` (or, given a url, takes
    that role) and refuses to run otherwise (warehouse.RoleUnavailable), never with more privileges."""
    if url is None:
        return warehouse.connect(warehouse.EVALUATOR, strict=True, autocommit=True, row_factory=dict_row)
    conn = psycopg.connect(url, autocommit=True, row_factory=dict_row)
    warehouse.take_role(conn, warehouse.EVALUATOR)
    return conn


def _q(conn, text: str, params: tuple = ()) -> list[dict[str, Any]]:
    return conn.execute(text, params).fetchall()


def default_pair(conn, rounds: tuple[str, ...] = ()) -> tuple[str, str]:
    """The comparison the report shows by default: the configured baseline → follow-up round (the first two
    of settings.survey_rounds), never the neighbouring months of two municipalities. Without configured
    rounds: the latest certified pair of rounds."""
    if len(rounds) >= 2:
        return rounds[0], rounds[1]
    row = conn.execute("select baseline_round, followup_round from certified.survey_item_change"
                       " order by followup_round desc, baseline_round desc limit 1").fetchone()
    if not row:
        raise RuntimeError("no certified survey item changes: nothing to report yet")
    return row["baseline_round"], row["followup_round"]


def resolve_round(conn, value: str, side: str) -> str:
    """A round name as given, or a wave month (YYYY-MM) that is one round wherever it was surveyed."""
    if not PERIOD_RE.match(value):
        return value
    column = "baseline" if side == "baseline" else "followup"
    found = {r["r"] for r in _q(conn, f"select distinct {column}_round as r from certified.survey_item_change"
                                      f" where {column}_wave = %s", (value,))}
    if len(found) != 1:
        raise RuntimeError(f"--{side} {value}: pass a survey round (settings.survey_rounds); the month "
                           f"{value} is {'no' if not found else 'more than one'} {side} round")
    return found.pop()


# ---------------------------------------------------------------- sections


def section_response(conn, names: dict[str, str], base: str, follow: str, minimum: float) -> str:
    rows = _q(conn, "select * from certified.survey_response_rate where round in (%s, %s)"
                    " order by municipality_code = 'ALL', municipality_code, round = %s desc, wave",
              (base, follow, base))
    mp = f"{minimum * 100:.0f} %"
    out = [f'<h3>5.1 {bi("Svarprocent", "Response rates")}</h3>',
           f'<p class="rule">{bi(f"Resultater fra en måling med en svarprocent under {mp} skal læses med forsigtighed", f"Results from a wave with a response rate below {mp} are to be read with caution")}.</p>',
           '<table><tr><th>' + bi("Kommune", "Municipality") + '</th><th>' + bi("Runde", "Round") + '</th><th>'
           + bi("Måling", "Wave") + '</th><th>' + bi("Besvarelser", "Respondents") + '</th><th>' + bi("Målgruppe", "Target population") + '</th><th>'
           + bi("Svarprocent", "Response rate") + f'</th><th>{bi(f"Mindst {mp}", f"At least {mp}")}</th></tr>']
    for r in rows:
        s = r["suppressed"]
        ok = r["meets_minimum"]
        cls = "" if s or ok is None else (' class="ok"' if ok else ' class="low"')
        out.append(f'<tr{cls}><td>{e(names.get(r["municipality_code"], r["municipality_code"]))}</td>'
                   f'<td>{e(r["round"])}</td><td>{e(r["wave"] or "–")}</td>'
                   f'<td class="n">{fmt(r["n_respondents"], suppressed=s)}</td>'
                   f'<td class="n">{fmt(r["n_target_population"], suppressed=s)}</td>'
                   f'<td class="n">{fmt(r["response_rate"], 0, pct=True, suppressed=s)}</td>'
                   f'<td>{fmt(ok, suppressed=s)}</td></tr>')
    out.append("</table>")
    return "\n".join(out)


def section_items(conn, names: dict[str, str], base: str, follow: str) -> tuple[str, int]:
    changes = _q(conn, "select * from certified.survey_item_change where baseline_round = %s and followup_round = %s"
                       " order by item_code, municipality_code = 'ALL' desc, municipality_code", (base, follow))
    dist = _q(conn, "select * from certified.survey_answer_distribution where round in (%s, %s) and not is_total"
                    " order by item_code, municipality_code, answer_ordinal", (base, follow))
    by_item: dict[str, list[dict]] = defaultdict(list)
    for c in changes:
        by_item[c["item_code"]].append(c)
    shares: dict[tuple[str, str, str], list[tuple[str, Any]]] = defaultdict(list)
    for d in dist:
        shares[(d["item_code"], d["municipality_code"], d["round"])].append(
            (f'{d["answer_label"]} ({d["answer_label_en"]})', d["share_of_answers"]))
    significant = [i for i, rows in by_item.items() if any(r["significant"] for r in rows)]
    # the level the statistics tested at (settings.significance_level), as the certified rows record it
    level = next((c["significance_level"] for c in changes if c.get("significance_level") is not None),
                 stats_settings.significance_level())
    level_da, level_en = f"{level:g}".replace(".", ","), f"{level:g}"
    out = [f'<h3>5.2 {bi("Spørgsmål med signifikant ændring", "Items with a significant change")}</h3>',
           f'<p>{bi(f"Welch t-test, tosidet, p ≤ {level_da}; {base} mod {follow}. Søjlerne viser svarfordelingen i procent af besvarelserne", f"Welch t-test, two-sided, p ≤ {level_en}; {base} against {follow}. The bars show the answer distribution as a share of the answers")}.</p>']
    if not significant:
        out.append(f'<p>{bi("Ingen spørgsmål ændrede sig signifikant", "No item changed significantly")}.</p>')
    charts = 0
    for item in significant:
        rows = by_item[item]
        first = rows[0]
        out.append(f'<div class="item"><h4>{e(item)} {e(first["text_da"])} '
                   f'<span class="en">({e(first["text_en"])})</span></h4>'
                   f'<p class="dim">{bi(first["dimension_da"] or "", first["dimension_en"] or "")}</p>')
        out.append('<table><tr><th>' + bi("Kommune", "Municipality") + '</th><th>n ' + e(base) + '</th><th>n '
                   + e(follow) + '</th><th>' + bi("Gns. før", "Mean before") + '</th><th>'
                   + bi("Gns. efter", "Mean after") + '</th><th>' + bi("Ændring", "Change") + '</th><th>p</th><th>'
                   + bi("Signifikant", "Significant") + '</th></tr>')
        for r in rows:
            s = r["suppressed"]
            out.append(f'<tr{" class=sig" if r["significant"] else ""}>'
                       f'<td>{e(names.get(r["municipality_code"], r["municipality_code"]))}'
                       f'{" ⚠" if r["low_response"] else ""}</td>'
                       f'<td class="n">{fmt(r["n_baseline"], suppressed=s)}</td>'
                       f'<td class="n">{fmt(r["n_followup"], suppressed=s)}</td>'
                       f'<td class="n">{fmt(r["mean_baseline"], 2, suppressed=s)}</td>'
                       f'<td class="n">{fmt(r["mean_followup"], 2, suppressed=s)}</td>'
                       f'<td class="n">{fmt(r["mean_diff"], 2, suppressed=s)}</td>'
                       f'<td class="n">{fmt(r["p_value"], 3, suppressed=s)}</td>'
                       f'<td>{fmt(r["significant"], suppressed=s)}</td></tr>')
        out.append("</table><div class='charts'>")
        scopes = [r["municipality_code"] for r in rows if r["municipality_code"] != ALL] + [ALL]
        for scope in scopes:
            b = shares.get((item, scope, base), [])
            f = shares.get((item, scope, follow), [])
            cats = [c for c, _ in (b or f)]
            if not cats:
                continue
            title = "Alle kommuner (all municipalities)" if scope == ALL else names.get(scope, scope)
            out.append(bar_chart(title, cats, [(base, BASE_COLOUR, [v for _, v in b] or [None] * len(cats)),
                                               (follow, FOLLOW_COLOUR, [v for _, v in f] or [None] * len(cats))]))
            charts += 1
        out.append("</div></div>")
    rest = sorted(set(by_item) - set(significant))
    out.append(f'<h3>5.3 {bi("Spørgsmål uden signifikant ændring", "Items without a significant change")}</h3>')
    out.append(f'<p>{bi(f"{len(rest)} spørgsmål ændrede sig ikke signifikant (p > {level_da}) i nogen kommune eller samlet", f"{len(rest)} items did not change significantly (p > {level_en}) in any municipality or overall")}.</p>')
    if rest:
        out.append('<table><tr><th>' + bi("Spørgsmål", "Item") + '</th><th>' + bi("Dimension", "Dimension")
                   + '</th><th>' + bi("Ændring samlet", "Change overall") + '</th><th>p</th></tr>')
        for item in rest:
            all_row = next((r for r in by_item[item] if r["municipality_code"] == ALL), by_item[item][0])
            s = all_row["suppressed"]
            out.append(f'<tr><td>{e(item)} {e(all_row["text_da"])} <span class="en">({e(all_row["text_en"])})</span></td>'
                       f'<td>{e(all_row["dimension_da"])}</td>'
                       f'<td class="n">{fmt(all_row["mean_diff"], 2, suppressed=s)}</td>'
                       f'<td class="n">{fmt(all_row["p_value"], 3, suppressed=s)}</td></tr>')
        out.append("</table>")
    return "\n".join(out), charts


def small_cell_rule(threshold: int, units: dict[str, str]) -> str:
    """The disclosure rule in the words of what it counts (docs/disclosure.md): persons behind a cell, per
    domain (settings.small_cell_units), and episode counts published with a mark."""
    survey = units.get("survey", "svar")
    absence = units.get("absence", "medarbejdere")
    return (f'{bi(f"Tal bag færre end {threshold} {survey} (spørgeskema) eller færre end {threshold} {absence} (sygefravær) er diskretioneret (–)", f"Figures behind fewer than {threshold} respondents (survey) or {threshold} employees (sick leave) are suppressed (–)")}. '
            f'{bi(f"Antal episoder tæller hændelser, ikke personer: de vises, og tal under {threshold} er markeret °", f"Episode counts count events, not persons: they are shown, and counts below {threshold} are marked °")}.')


def section_absence(conn, names: dict[str, str]) -> str:
    years = _q(conn, "select * from certified.absence_unit_year order by municipality_code, is_average,"
                     " unit_name, metric, year")
    changes = _q(conn, "select * from certified.absence_change order by municipality_code, is_average,"
                       " unit_name, metric, followup_year")
    out = [f'<h3>7.2 {bi("Sygefravær", "Sick leave")}</h3>']
    if not years:
        out.append(f'<p>{bi("Ingen kommune har leveret sygefravær", "No municipality delivered sick leave")}.</p>')
    grouped: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in years:
        grouped[(r["municipality_code"], r["metric"])].append(r)
    for (code, metric), rows in grouped.items():
        ys = sorted({r["year"] for r in rows})
        units = list(dict.fromkeys(r["unit_name"] for r in rows))
        da, en = METRICS.get(metric, (metric, metric))
        out.append(f'<h4>{e(names.get(code, code))}: {bi(da, en)}</h4><table><tr><th>'
                   + bi("Enhed", "Unit") + "</th>" + "".join(f"<th>{y}</th>" for y in ys)
                   + '<th>' + bi("Ændring", "Change") + '</th><th>' + bi("Bemærkning", "Note") + "</th></tr>")
        cell = {(r["unit_name"], r["year"]): r for r in rows}
        for unit in units:
            label = bi("Gennemsnit", "Average") if unit == "(average)" else e(unit)
            tds = []
            for y in ys:
                r = cell.get((unit, y))
                if r is None:
                    tds.append("<td></td>")
                elif r["value_status"] not in ("reported", "excluded") and not r["suppressed"]:
                    tds.append(f'<td class="na">{bi(*STATUS.get(r["value_status"], (r["value_status"],) * 2))}</td>')
                else:
                    v = fmt(r["value"], 2, suppressed=r["suppressed"])
                    if r["value_status"] == "excluded":
                        v = f"({v})"
                    brk = f' <sup title="{e(r["break_id"])}">†</sup>' if r["break_id"] else ""
                    tds.append(f'<td class="n">{v}{brk}{_part_year_mark(r)}</td>')
            ch = next((c for c in changes if c["municipality_code"] == code and c["unit_name"] == unit
                       and c["metric"] == metric), None)
            if ch is None:
                ch_td, note = "<td></td>", ""
            elif ch["suppressed"]:
                ch_td, note = f'<td class="n">{fmt(None, suppressed=True)}</td>', ""
            elif ch["computable"]:
                ch_td, note = f'<td class="n">{fmt(ch["change"], 2)}</td>', ""
            else:
                ch_td = f'<td class="na">{bi("tilbageholdt", "withheld")}</td>'
                note = e(ch["reason"])
            out.append(f"<tr><td>{label}</td>{''.join(tds)}{ch_td}<td class='note'>{note}</td></tr>")
        out.append("</table>")
    out.append(f'<p class="note">{bi("Ændring = opfølgningsår − gennemsnittet af baselineårene. † markerer et databrud (se bemærkning); ændringen tilbageholdes hen over et brud. Tal i parentes er udeladt", "Change = follow-up year − mean of the baseline years. † marks a comparability break (see note); the change is withheld across a break. Figures in parentheses are excluded")}. {bi("* markerer et delår: færre end 12 måneders lønudtræk (antal måneder i parentes); der beregnes ingen ændring ud fra et delår", "* marks a part year: fewer than 12 months of payroll (months in parentheses); no change is computed from a part year")}.</p>')
    return "\n".join(out)


def _part_year_mark(row: dict) -> str:
    """A part year's figure (payroll with fewer than 12 months) must not read as a whole year's."""
    if not row.get("is_part_year"):
        return ""
    months = row.get("months_delivered")
    return (f' <sup class="part-year" title="{months} af 12 måneder / {months} of 12 months">'
            f'*({months})</sup>')


def section_incidents(conn, names: dict[str, str]) -> str:
    rows = _q(conn, "select * from certified.incident_episode_year order by municipality_code, register, year")
    changes = _q(conn, "select * from certified.incident_rate_change order by municipality_code, register")
    coverage = _q(conn, "select municipality_code, source, status,"
                        " string_agg(period, ', ' order by period) as periods"
                        " from certified.delivery_coverage"
                        " where status in ('not_delivered', 'overdue', 'quarantined', 'partly_quarantined', 'waiting')"
                        " and source in ('incidents', 'use_of_force') and delivery_expected"
                        " group by municipality_code, source, status order by 1, 2, 3")
    out = [f'<h3>7.1 {bi("Arbejdsulykker, trusler og vold", "Occupational accidents, threats and violence")}</h3>']
    grouped: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        grouped[r["municipality_code"]].append(r)
    for code, rs in grouped.items():
        ys = sorted({r["year"] for r in rs})
        out.append(f'<h4>{e(names.get(code, code))}</h4><table><tr><th>' + bi("Register", "Register") + "</th>"
                   + "".join(f"<th>{y}</th>" for y in ys) + "<th>" + bi("Forbehold", "Caveats") + "</th></tr>")
        regs = list(dict.fromkeys(r["register"] for r in rs))
        for reg in regs:
            cell = {r["year"]: r for r in rs if r["register"] == reg}
            tds, caveats = [], []
            for y in ys:
                r = cell.get(y)
                if r is None:
                    tds.append("<td></td>")
                elif r["status"] in NOTHING_USABLE:
                    tds.append(f'<td class="na">{status_label(r["status"])}</td>')
                elif r["suppressed"]:
                    tds.append(f'<td class="n">{fmt(None, suppressed=True)}</td>')
                else:
                    excl = f' <span class="excl" title="udeladt / excluded">−{r["n_excluded"]}</span>' \
                        if r["n_excluded"] else ""
                    partly = f' <span class="na">{status_label(r["status"])}</span>' \
                        if r["status"] == "partly_quarantined" else ""
                    small = ' <span class="small" title="færre end tærsklen / below the threshold: få hændelser, læs med forsigtighed (few events, read with care)">°</span>' \
                        if r.get("small_count") else ""
                    tds.append(f'<td class="n">{fmt(r["n_counted"])}{small}{excl}{partly}</td>')
                if r and r["break_description"] and r["break_description"] not in caveats:
                    caveats.append(r["break_description"])
            excluded = sum(r["n_excluded"] or 0 for r in cell.values())
            if excluded:
                caveats.append(f"{excluded} episoder udeladt efter sagsgennemgang / episodes excluded by case review")
            da, en = REGISTERS.get(reg, (reg, reg))
            out.append(f"<tr><td>{bi(da, en)}</td>{''.join(tds)}<td class='note'>{'; '.join(e(c) for c in caveats)}</td></tr>")
        out.append("</table>")
    out.append(f'<h4>{bi("Ændring i hyppighed", "Change in rate")}</h4><table><tr><th>' + bi("Kommune", "Municipality")
               + "</th><th>" + bi("Register", "Register") + "</th><th>" + bi("Baseline", "Baseline") + "</th><th>"
               + bi("Opfølgning", "Follow-up") + "</th><th>" + bi("Rate-ratio", "Rate ratio") + "</th><th>p</th><th>"
               + bi("Forbehold", "Caveats") + "</th></tr>")
    for c in changes:
        s = c["suppressed"]
        caveats = []
        if c["status"] in STATUS:
            da, en = STATUS[c["status"]]
            caveats.append(f"{da} / {en}")
        if c["crosses_break"]:
            caveats.append(f"databrud / comparability break {c['break_id']}: {c['break_description'] or ''}")
        if c["note"]:
            caveats.append(c["note"])
        da, en = REGISTERS.get(c["register"], (c["register"], c["register"]))
        out.append(f"<tr><td>{e(names.get(c['municipality_code'], c['municipality_code']))}</td><td>{bi(da, en)}</td>"
                   f"<td class='n'>{fmt(c['n_baseline'], suppressed=s)} ({e(c['baseline_years'])})</td>"
                   f"<td class='n'>{fmt(c['n_followup'], suppressed=s)} ({e(c['followup_years'])})</td>"
                   f"<td class='n'>{fmt(c['rate_ratio'], 2, suppressed=s)}</td>"
                   f"<td class='n'>{fmt(c['p_value'], 3, suppressed=s)}</td>"
                   f"<td class='note'>{'; '.join(e(x) for x in caveats)}</td></tr>")
    out.append("</table>")
    if coverage:
        out.append(f'<h4>{bi("Ikke leveret eller afvist", "Not delivered or rejected")}</h4><ul>')
        for r in coverage:
            out.append(f"<li>{e(names.get(r['municipality_code'], r['municipality_code']))}: {e(r['source'])} "
                       f"— {status_label(r['status'])}: {e(r['periods'])}</li>")
        out.append("</ul>")
    out.append(f'<p class="note">{bi("Ikke leveret er ikke det samme som nul, og afvist (karantæne) er ikke det samme som ikke leveret. Udeladte episoder er markeret, ikke slettet", "Not delivered is not zero, and rejected (quarantined) is not the same as not delivered. Excluded episodes are flagged, not deleted")}.</p>')
    return "\n".join(out)


CSS = """
body{font-family:Georgia,'DejaVu Serif',serif;max-width:1100px;margin:2em auto;color:#222;padding:0 1em}
h1{font-size:1.6em} h2{border-bottom:2px solid #1f4e79;padding-bottom:.2em;margin-top:2em}
.en{color:#666;font-style:italic;font-weight:normal}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .5em;vertical-align:top} th{background:#eef3f8;text-align:left}
td.n{text-align:right;white-space:nowrap} td.na{color:#777;font-size:.85em} td.note{font-size:.85em;max-width:28em}
tr.low td{background:#fbe9e7} tr.ok td{background:#eef7ee} tr.sig td{font-weight:bold}
.supp{color:#a00} .small{color:#a60} .excl{color:#a60;font-size:.8em} .rule{background:#fff8e1;padding:.4em .6em}
.charts{display:flex;flex-wrap:wrap;gap:10px} svg.chart{background:#fafafa;border:1px solid #ddd}
svg .ct{font:bold 12px sans-serif} svg .tick{font:10px sans-serif;fill:#444} svg .grid{stroke:#ddd}
.item{margin-bottom:1.5em} p.note{font-size:.85em;color:#555} footer{margin-top:3em;font-size:.8em;color:#666}
"""


def render(conn, baseline: str | None = None, followup: str | None = None) -> tuple[str, dict[str, int]]:
    config = load_config()
    names = {m.code: m.name for m in config.municipalities}
    names[ALL] = "Alle kommuner (all)"
    minimum = float(config.settings.get("minimum_response_rate", 0.60))
    if not (baseline and followup):
        default = default_pair(conn, config.survey_rounds)
        baseline, followup = baseline or default[0], followup or default[1]
    baseline, followup = resolve_round(conn, baseline, "baseline"), resolve_round(conn, followup, "followup")
    unknown = [r for r in (baseline, followup) if config.survey_rounds and r not in config.survey_rounds]
    if unknown:
        raise RuntimeError(f"unknown survey round {unknown[0]!r}: settings.survey_rounds has "
                           f"{', '.join(config.survey_rounds)}")
    pub = conn.execute("select period, run_id, certified_at, small_cell_threshold from certified.publication_log"
                       " where outcome = 'published' order by publication_id desc limit 1").fetchone()
    response = section_response(conn, names, baseline, followup, minimum)
    items, charts = section_items(conn, names, baseline, followup)
    body = f"""<!doctype html>
<html lang="da"><head><meta charset="utf-8">
<title>Evalueringsrapport (Evaluation report) {e(baseline)}–{e(followup)}</title>
<style>{CSS}</style></head><body>
<h1>{bi("Evaluering af det psykiske arbejdsmiljø", "Evaluation of the psychosocial work environment")}</h1>
<p>{bi("Baseline", "Baseline")}: <b>{e(baseline)}</b> · {bi("Opfølgning", "Follow-up")}: <b>{e(followup)}</b> ·
{bi("Kommuner", "Municipalities")}: {e(", ".join(f"{m.name} ({m.code})" for m in config.municipalities))}</p>
<p class="note">{bi("Certificeret udgave", "Certified publication")}: {e(pub["period"] if pub else "–")},
{e(pub["certified_at"].isoformat(timespec="minutes") if pub else "–")} ·
{small_cell_rule(int(pub["small_cell_threshold"]) if pub else int(config.settings.get("small_cell_threshold", 5)),
                 dict(config.settings.get("small_cell_units") or {}))}</p>
<h2>5 {bi("Trivselsundersøgelsen", "The well-being survey")}</h2>
{response}
{items}
<h2>7 {bi("Sygefravær, arbejdsulykker, trusler og vold", "Sick leave, accidents, threats and violence")}</h2>
{section_incidents(conn, names)}
{section_absence(conn, names)}
<footer>trivsel · {bi("dannet", "generated")} {e(datetime.now().astimezone().isoformat(timespec="minutes"))}
· {bi("kilde: skemaet certified", "source: schema certified")}</footer>
</body></html>
"""
    return body, {"charts": charts}


def write_report(out: Path, baseline: str | None = None, followup: str | None = None,
                 url: str | None = None) -> Path:
    with _connect(url) as conn:
        text, stats = render(conn, baseline, followup)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    log.info("report written to %s (%d charts)", out, stats["charts"])
    return out


def _decimal(v: Any) -> Any:
    return float(v) if isinstance(v, Decimal) else v
