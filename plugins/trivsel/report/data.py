"""What the report reads: schema certified, as `evaluator`, and nothing else.

Why a module of its own: every query of the report is here, so what an evaluator's report can show is
readable in one place, and the rendering modules never touch the database.
"""

from __future__ import annotations

from typing import Any

from psycopg.rows import dict_row

from trivsel import evaluator
from trivsel.config import PERIOD_RE


def connect(url: str | None = None):
    """As `evaluator` (its own login, or `url` taking the role); WarehouseDown when nothing answers."""
    return evaluator.connect(url, autocommit=True, row_factory=dict_row)


def q(conn, text: str, params: tuple = ()) -> list[dict[str, Any]]:
    return conn.execute(text, params).fetchall()


def columns(conn, table: str) -> set[str]:
    """The columns a certified table has: optional ones (power, confidence intervals) are shown if there."""
    return {r["column_name"] for r in q(conn, "select column_name from information_schema.columns"
                                              " where table_schema = 'certified' and table_name = %s", (table,))}


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
    found = {r["r"] for r in q(conn, f"select distinct {column}_round as r from certified.survey_item_change"
                                     f" where {column}_wave = %s", (value,))}
    if len(found) != 1:
        raise RuntimeError(f"--{side} {value}: pass a survey round (settings.survey_rounds); the month "
                           f"{value} is {'no' if not found else 'more than one'} {side} round")
    return found.pop()


def response_rates(conn, base: str, follow: str) -> list[dict]:
    return q(conn, "select * from certified.survey_response_rate where round in (%s, %s)"
                   " order by municipality_code = 'ALL', municipality_code, round = %s desc, wave",
             (base, follow, base))


def item_changes(conn, base: str, follow: str) -> list[dict]:
    return q(conn, "select * from certified.survey_item_change where baseline_round = %s and followup_round = %s"
                   " order by item_code, municipality_code = 'ALL' desc, municipality_code", (base, follow))


def distributions(conn, base: str, follow: str) -> list[dict]:
    return q(conn, "select * from certified.survey_answer_distribution where round in (%s, %s) and not is_total"
                   " order by item_code, municipality_code, answer_ordinal", (base, follow))


def absence_years(conn) -> list[dict]:
    return q(conn, "select * from certified.absence_unit_year order by municipality_code, is_average,"
                   " unit_name, metric, year")


def absence_changes(conn) -> list[dict]:
    return q(conn, "select * from certified.absence_change order by municipality_code, is_average,"
                   " unit_name, metric, followup_year")


def incident_years(conn) -> list[dict]:
    return q(conn, "select * from certified.incident_episode_year order by municipality_code, register, year")


def incident_changes(conn) -> list[dict]:
    return q(conn, "select * from certified.incident_rate_change order by municipality_code, register")


def coverage_gaps(conn, sources: tuple[str, ...]) -> list[dict]:
    """Expected deliveries of `sources` that are not (fully) usable, per municipality, source and status."""
    return q(conn, "select municipality_code, source, status,"
                   " string_agg(period, ', ' order by period) as periods"
                   " from certified.delivery_coverage"
                   " where status in ('not_delivered', 'overdue', 'quarantined', 'partly_quarantined', 'waiting')"
                   " and source = any(%s) and delivery_expected"
                   " group by municipality_code, source, status order by 1, 2, 3", (list(sources),))


def source_statuses(conn, source: str) -> dict[str, set[str]]:
    """municipality → every status its deliveries of `source` have (to say why a section has no rows)."""
    out: dict[str, set[str]] = {}
    if conn.execute("select to_regclass('certified.delivery_coverage') as t").fetchone()["t"] is None:
        return out  # a warehouse certified without coverage: the section says "not delivered"
    for r in q(conn, "select distinct municipality_code, status from certified.delivery_coverage"
                     " where source = %s", (source,)):
        out.setdefault(r["municipality_code"], set()).add(r["status"])
    return out


def latest_publication(conn) -> dict | None:
    return conn.execute("select period, run_id, certified_at, small_cell_threshold from certified.publication_log"
                        " where outcome = 'published' order by publication_id desc limit 1").fetchone()
