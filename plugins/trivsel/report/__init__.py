"""`trivsel report`: the evaluation report's chapters 5 (the survey) and 7 (sick leave, incidents) for a
baseline/follow-up pair, drawn from the certified schema as one self-contained HTML page.

Everything comes from schema certified, read as the role `evaluator` (report.data), so the page shows
exactly what evaluators may see: suppressed cells stay hidden ("–", in charts a hatched band). The page is
rendered from Jinja2 templates (templates/report/, report.sections) with inline SVG charts (report.charts):
no scripts, no CDN. Labels are Danish with English in parentheses (report.labels, wording.yml).
"""

from __future__ import annotations

import logging
from pathlib import Path

from trivsel.report.data import default_pair, resolve_round
from trivsel.report.labels import ALL, METRICS, NOTHING_USABLE, REGISTERS, STATUS, bi, fmt, status_label
from trivsel.report.sections import (
    bar_chart,
    render,
    section_absence,
    section_incidents,
    section_items,
    section_response,
    small_cell_rule,
)

__all__ = ["ALL", "METRICS", "NOTHING_USABLE", "REGISTERS", "STATUS", "bar_chart", "bi", "default_pair", "fmt",
           "render", "resolve_round", "section_absence", "section_incidents", "section_items", "section_response",
           "small_cell_rule", "status_label", "write_report"]

log = logging.getLogger(__name__)


def write_report(out: Path, baseline: str | None = None, followup: str | None = None,
                 url: str | None = None) -> Path:
    """Render the report as `evaluator` and write it; nothing is written when rendering fails."""
    from trivsel.report import data

    with data.connect(url) as conn:
        text, stats = render(conn, baseline, followup)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    log.info("report written to %s (%d charts)", out, stats["charts"])
    return out
