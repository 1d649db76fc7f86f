"""Shared reading and checking for the incident and use-of-force schemes.

All six schemes deliver semicolon-separated text files in UTF-8 (a byte-order mark is allowed) with a
Danish header row. This module streams them row by row and holds the checks every one of them makes:
the yearly period, dates inside the year, counts, units known to the municipality.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from trivsel import settings
from trivsel.sources._text import encoding_reason
from trivsel.sources.base import DeliveryContext, FileRejected

DELIMITER = ";"
ENCODING = "utf-8-sig"


def _seed_path(relative: str) -> Path:
    return settings.dbt_dir() / "seeds" / relative


@lru_cache(maxsize=16)
def _read_seed(relative: str) -> tuple[dict[str, str], ...]:
    with open(_seed_path(relative), encoding="utf-8", newline="") as fh:
        return tuple(csv.DictReader(fh))


def seed_labels(scheme: str, label_column: str) -> frozenset[str]:
    """The labels a scheme may deliver in a column: those dbt/seeds/incidents/incident_label_map.csv maps.

    The parser validates against the same list the models join, so a new label is added in one place (the
    seed) and a label nobody mapped is quarantined, never silently dropped.
    """
    return frozenset(r["label"] for r in _read_seed("incidents/incident_label_map.csv")
                     if r["scheme"] == scheme and r["label_column"] == label_column)


def absence_labels(scheme: str) -> frozenset[str]:
    """With/without-absence labels of a scheme (dbt/seeds/incidents/incident_with_absence.csv)."""
    return frozenset(r["label"] for r in _read_seed("incidents/incident_with_absence.csv") if r["scheme"] == scheme)


def check_yearly_period(ctx: DeliveryContext) -> int:
    """A yearly delivery belongs in period YYYY-12 and covers calendar year YYYY. Returns the year."""
    if not re.fullmatch(r"\d{4}-12", ctx.period or ""):
        raise FileRejected(
            f"{ctx.file_name}: a yearly delivery belongs in period YYYY-12 (the year it covers), "
            f"not {ctx.period!r}"
        )
    return ctx.year


def read_rows(path: Path, ctx: DeliveryContext, header: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (source_row, {column: stripped value}) for each data row; the header is row 1.

    Raises FileRejected for a file that is not UTF-8, is empty, or lacks one of the expected columns.
    Blank lines are skipped (they keep their row numbers for the rows after them).
    """
    try:
        with open(path, encoding=ENCODING, newline="") as fh:
            reader = csv.reader(fh, delimiter=DELIMITER)
            try:
                first = next(reader)
            except StopIteration:
                raise FileRejected(f"{ctx.file_name}: the file is empty (no header row)", row=1) from None
            names = [h.strip() for h in first]
            missing = [h for h in header if h not in names]
            if missing:
                raise FileRejected(
                    f"{ctx.file_name}: missing column(s) {', '.join(repr(m) for m in missing)} in the header "
                    f"(expected {DELIMITER!r}-separated {', '.join(header)}; got {', '.join(names) or 'nothing'})",
                    row=1,
                )
            index = {h: names.index(h) for h in header}
            for line_no, values in enumerate(reader, start=2):
                if not values or all(not v.strip() for v in values):
                    continue
                if len(values) != len(names):
                    ctx.reject(row=line_no, column=None,
                               reason=f"{ctx.file_name} row {line_no}: {len(values)} fields, the header has "
                                      f"{len(names)}", value=DELIMITER.join(values))
                    continue
                yield line_no, {h: values[i].strip() for h, i in index.items()}
    except UnicodeDecodeError:
        reason, line = encoding_reason(path)
        raise FileRejected(f"{ctx.file_name}: {reason}; deliver the file in UTF-8", row=line) from None


def reject(ctx: DeliveryContext, row: int, column: str, reason: str, value: object = None) -> None:
    ctx.reject(row=row, column=column, reason=f"{ctx.file_name} row {row}, column {column!r}: {reason}",
               value=value)


def parse_date(ctx: DeliveryContext, row: int, column: str, value: str, year: int) -> dt.date | None:
    """dd-mm-yyyy (as the registers write it) or ISO yyyy-mm-dd; must fall in the delivery's year."""
    parsed = None
    for fmt in ("%d-%m-%Y", "%d.%m.%Y", "%Y-%m-%d"):
        try:
            parsed = dt.datetime.strptime(value, fmt).date()
            break
        except ValueError:
            continue
    if parsed is None:
        reject(ctx, row, column, "not a date (expected dd-mm-yyyy)", value)
        return None
    if parsed.year != year:
        reject(ctx, row, column, f"date outside the period: delivery {ctx.period} covers {year}", value)
        return None
    return parsed


def parse_year(ctx: DeliveryContext, row: int, column: str, value: str, year: int) -> int | None:
    if not re.fullmatch(r"\d{4}", value):
        reject(ctx, row, column, "not a year (expected YYYY)", value)
        return None
    if int(value) != year:
        reject(ctx, row, column, f"year outside the period: delivery {ctx.period} covers {year}", value)
        return None
    return int(value)


def parse_count(ctx: DeliveryContext, row: int, column: str, value: str, *, blank_ok: bool = False) -> int | None:
    if value == "" and blank_ok:
        return None
    if not re.fullmatch(r"\d+", value):
        reject(ctx, row, column, "not a whole number of zero or more", value)
        return None
    return int(value)


def check_label(ctx: DeliveryContext, row: int, column: str, value: str, known: frozenset[str]) -> bool:
    if value not in known:
        reject(ctx, row, column, f"unknown label; known labels: {', '.join(sorted(known))}", value)
        return False
    return True


def _seed_aliases(municipality_code: str) -> frozenset[str]:
    return frozenset(r["alias"].strip() for r in _read_seed("common/unit_aliases.csv")
                     if r.get("municipality_code", "").strip() == municipality_code)


def known_unit_names(ctx: DeliveryContext) -> frozenset[str] | None:
    """Config unit names plus every alias (config and the unit-alias seed); None when config has no units."""
    names = set(ctx.unit_names)
    if not names:
        return None
    aliases = ctx.municipality.get("aliases") or ()
    if isinstance(aliases, dict):
        names.update(aliases)
    else:
        for a in aliases:
            names.add(a["alias"] if isinstance(a, dict) else str(a))
    for unit in ctx.municipality.get("units", []):
        names.update(unit.get("aliases", []) if isinstance(unit, dict) else [])
    names.update(_seed_aliases(ctx.municipality_code))
    return frozenset(names)


def check_unit(ctx: DeliveryContext, row: int, column: str, value: str, known: frozenset[str] | None) -> bool:
    if value == "":
        reject(ctx, row, column, "unit is missing", value)
        return False
    if known is not None and value not in known:
        reject(ctx, row, column, "unknown unit: not a unit of this municipality in config/municipalities.yml "
                                 "nor an alias in dbt/seeds/common/unit_aliases.csv", value)
        return False
    return True


def check_duplicate(ctx: DeliveryContext, row: int, column: str, key: object, seen: dict) -> bool:
    if key in seen:
        reject(ctx, row, column, f"duplicate {column} (first in row {seen[key]})", key)
        return False
    seen[key] = row
    return True
