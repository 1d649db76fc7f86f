"""The report's words and number formats: Danish first, English in parentheses.

The wording of caveats lives in data, not here: comparability breaks in the dbt seed
`seeds/common/comparability_breaks.csv` (description_da, description_en) and the report's other phrases in
`templates/report/wording.yml`, so a new break or a better sentence is a data change.
"""

from __future__ import annotations

import csv
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from markupsafe import Markup, escape

from trivsel import settings

TEMPLATES = Path(__file__).resolve().parents[1] / "templates" / "report"
ALL = "ALL"


@lru_cache(maxsize=1)
def wording() -> dict[str, Any]:
    """templates/report/wording.yml: metrics, registers, statuses and caveat phrases (da, en)."""
    return yaml.safe_load((TEMPLATES / "wording.yml").read_text(encoding="utf-8"))


def _pairs(key: str) -> dict[str, tuple[str, str]]:
    return {k: (v["da"], v["en"]) for k, v in (wording().get(key) or {}).items()}


METRICS = _pairs("metrics")
REGISTERS = _pairs("registers")
#: Every status a certified table reports. Delivered, partly quarantined, quarantined and not delivered are
#: four different facts (never one "missing").
STATUS = _pairs("statuses")
#: Statuses of a year with nothing usable: shown in words instead of a count (never as 0).
NOTHING_USABLE = ("not_delivered", "quarantined", "waiting")


def bi(da: Any, en: Any) -> Markup:
    """A Danish label with the English beside it, in parentheses."""
    da, en = ("" if da is None else da), ("" if en is None else en)
    if not en or en == da:
        return Markup("{}").format(da)
    return Markup('{} <span class="en">({})</span>').format(da, en)


def phrase(key: str, **values: Any) -> Markup:
    """A phrase of wording.yml's `phrases`, both languages filled in."""
    p = wording()["phrases"][key]
    return bi(p["da"].format(**values), p["en"].format(**values))


def status_label(status: str) -> Markup:
    """The status in Danish (English beside it); an unknown status as it is."""
    return bi(*STATUS.get(status, (status, status)))


def fmt(value: Any, digits: int = 1, pct: bool = False, suppressed: bool = False) -> Markup:
    """A number as the evaluation printed it (decimal comma, thin grouping); suppressed cells as a mark that
    reads differently from 0."""
    if suppressed:
        return Markup('<span class="supp" title="undertrykt: for få personer (suppressed: small cell)">–</span>')
    if value is None:
        return Markup("")
    if isinstance(value, bool):
        return Markup("ja (yes)" if value else "nej (no)")
    if isinstance(value, int) and not pct:
        return Markup(f"{value:d}")
    v = float(value) * (100 if pct else 1)
    return Markup(escape(f"{v:,.{digits}f}".replace(",", " ").replace(".", ",") + (" %" if pct else "")))


def pct_label(level: float) -> str:
    """0.05 as the report prints it: '0,05' (Danish) and '0.05' (English)."""
    text = f"{level:g}"
    return text.replace(".", ",")


@lru_cache(maxsize=1)
def breaks() -> dict[str, tuple[str, str, int | None]]:
    """break_id → (description_da, description_en, break_year) from the comparability-break seed."""
    path = settings.dbt_dir() / "seeds" / "common" / "comparability_breaks.csv"
    if not path.exists():
        return {}
    with path.open(encoding="utf-8", newline="") as fh:
        return {r["break_id"]: (r["description_da"], r["description_en"],
                                int(r["break_year"]) if r.get("break_year") else None)
                for r in csv.DictReader(fh)}


_BREAK_ID = re.compile(r"\b\d{3}_[a-z0-9_]+\b")


def break_caveat(break_id: str | None, fallback: str | None = None) -> Markup:
    """A comparability break in plain words ("Databrud 2013: …"), never its raw id."""
    known = breaks().get(break_id or "")
    if known:
        da, en, year = known
        return phrase("break", year=year or "", da=da, en=en)
    text = _BREAK_ID.sub("", fallback or "").strip(" :()") or "–"
    return phrase("break_unknown", text=text)


def _note_part(part: str) -> Markup:
    for frag in wording().get("note_fragments") or []:
        m = re.fullmatch(frag["match"], part)
        if not m:
            continue
        values = {k: (v or "") for k, v in m.groupdict().items()}
        da_desc, en_desc, _ = breaks().get(values.get("break", ""), (values.get("break", ""),) * 2 + (None,))
        return bi(frag["da"].format(**values, break_da=da_desc, break_en=en_desc),
                  frag["en"].format(**values, break_da=da_desc, break_en=en_desc))
    for bid, (_, en, _) in breaks().items():  # never a raw break id
        part = part.replace(f"{bid}: {bid}", en).replace(bid, en)
    return bi(part, None)


def plain_note(note: str | None) -> Markup:
    """A statistics note in plain words, part by part ("; "): Danish from wording.yml's note_fragments with
    the English beside it, raw break ids replaced by the break's description."""
    if not note:
        return Markup("")
    return Markup("; ").join(_note_part(p.strip()) for p in note.split("; ") if p.strip())
