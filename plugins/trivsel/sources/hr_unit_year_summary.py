"""hr_unit_year_summary: historical unit-year sick-leave summary (as sent to the evaluator for 2010-2013).

See docs/sources/hr_unit_year_summary.md. `;`-separated, cp1252, decimal commas; one row per unit x year x
metric ('Nøgletal', labels in dbt/seeds/absence/absence_metrics.csv) with the figure as delivered and the FTE.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from trivsel.sources._absence_common import (
    AmbiguousNumber,
    csv_rows,
    danish_decimal,
    metric_labels,
    parse_figure,
    unit_lookup,
)
from trivsel.sources.base import Column, DeliveryContext, RawTable, Scheme

HEADER = ("Enhed", "År", "Nøgletal", "Værdi", "Årsværk")

VALUE_COLUMNS = (
    Column("value_text", "text", "the figure as delivered ('7,06', 'Ej oplyst', '(19,78)', '7,00/(10,24)')"),
    Column("marker", "text", "a marker instead of a figure ('Ej oplyst', '-'), see absence_value_markers seed"),
    Column("value_numeric", "numeric", "the (first) figure"),
    Column("value_in_parentheses", "boolean", "the (first) figure was in parentheses (shown, not averaged)"),
    Column("second_value_numeric", "numeric", "the second figure of a two-figure cell"),
    Column("second_value_in_parentheses", "boolean", "the second figure was in parentheses"),
)

SCHEME = Scheme(
    name="hr_unit_year_summary",
    source="hr_absence",
    suffixes=(".csv",),
    description="Unit-year sick-leave summary: unit, year, metric, figure, FTE",
    tables=(
        RawTable(
            "hr_unit_year_summary",
            (
                Column("source_row", "integer", "line in the file (header = 1)"),
                Column("unit_text", "text", "Enhed as delivered"),
                Column("year", "integer", "År"),
                Column("metric_label", "text", "Nøgletal as delivered"),
                *VALUE_COLUMNS,
                Column("fte", "numeric", "Årsværk of the unit in the year (null if not delivered)"),
            ),
            "One row per unit x year x metric",
        ),
    ),
)


def parse(path: Path, ctx: DeliveryContext) -> Iterator[tuple[str, tuple]]:
    units = unit_lookup(ctx)
    labels = metric_labels()
    seen: dict[tuple[str, int, str], int] = {}
    for row, rec in csv_rows(path, HEADER, ctx):
        ok = True
        unit_text = rec["Enhed"]
        if unit_text.casefold() not in units:
            ctx.reject(row=row, column="Enhed", reason=f"unknown unit {unit_text!r} "
                       f"for municipality {ctx.municipality_code} (not a unit in config/municipalities.yml nor an "
                       f"alias in dbt/seeds/common/unit_aliases.csv)", value=unit_text)
            ok = False
        year = None
        if not (rec["År"].isdigit() and 1990 <= int(rec["År"]) <= ctx.year):
            ctx.reject(row=row, column="År", reason=f"not a year up to the delivery's "
                       f"period {ctx.period}", value=rec["År"])
            ok = False
        else:
            year = int(rec["År"])
        label = rec["Nøgletal"]
        if label.casefold() not in labels:
            ctx.reject(row=row, column="Nøgletal", reason=f"unknown metric "
                       f"{label!r} (known: {', '.join(sorted(labels))})", value=label)
            ok = False
        try:
            figure = parse_figure(rec["Værdi"])
        except ValueError as exc:
            ctx.reject(row=row, column="Værdi", reason=f"{exc}", value=rec["Værdi"])
            ok = False
        fte = None
        if rec["Årsværk"]:
            try:
                fte = danish_decimal(rec["Årsværk"])
            except AmbiguousNumber as exc:
                ctx.reject(row=row, column="Årsværk", reason=str(exc), value=rec["Årsværk"])
                ok = False
            except ValueError:
                ctx.reject(row=row, column="Årsværk", reason="not a number",
                           value=rec["Årsværk"])
                ok = False
            else:
                if fte < 0:
                    ctx.reject(row=row, column="Årsværk", reason="negative FTE",
                               value=rec["Årsværk"])
                    ok = False
        if ok:
            key = (units[unit_text.casefold()], year, labels[label.casefold()])
            if key in seen:
                ctx.reject(row=row, column="Enhed", reason=f"unit {key[0]!r}, year {year} and "
                           f"metric {label!r} already delivered in row {seen[key]}")
                continue
            seen[key] = row
            yield "hr_unit_year_summary", (row, unit_text, year, label, *figure.row(), fte)
