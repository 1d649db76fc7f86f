"""Fredericia's register of reported work accidents with psychological injury: counts per unit and year
(docs/sources/reported_accidents_by_unit.md).

Units are written as the register writes them ("Socialpsykiatrien", "Bostøtten og ungeteam") and mapped in
dbt through dbt/seeds/common/unit_aliases.csv. A reported 0 is a row with 0, not a missing row.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from trivsel.sources import _incident_csv as f
from trivsel.sources.base import Column, DeliveryContext, RawTable, Scheme

HEADER = ("Sted", "År", "Skadevirkning", "Antal")


def injury_effects() -> frozenset[str]:
    return f.seed_labels("reported_accidents_by_unit", "injury_effect")


TABLE = RawTable(
    "reported_accident_count",
    (
        Column("source_row", "integer", "line in the file, header = 1"),
        Column("unit_label", "text", "Sted: unit as the register writes it"),
        Column("year", "integer", "År: the calendar year counted"),
        Column("injury_effect", "text", "Skadevirkning as delivered ('Psykisk')"),
        Column("n_reported", "integer", "Antal: reported accidents related to threats and violence"),
    ),
    description="Fredericia reported accidents with psychological injury, per unit and year",
)

SCHEME = Scheme(
    name="reported_accidents_by_unit",
    source="incidents",
    suffixes=(".csv",),
    tables=(TABLE,),
    description=__doc__.splitlines()[0],
)


def parse(path: Path, ctx: DeliveryContext) -> Iterator[tuple[str, tuple]]:
    year = f.check_yearly_period(ctx)
    units = f.known_unit_names(ctx)
    seen: dict = {}
    effects = injury_effects()
    for row, r in f.read_rows(path, ctx, HEADER):
        ok = f.check_unit(ctx, row, "Sted", r["Sted"], units)
        y = f.parse_year(ctx, row, "År", r["År"], year)
        ok &= y is not None
        ok &= f.check_label(ctx, row, "Skadevirkning", r["Skadevirkning"], effects)
        n = f.parse_count(ctx, row, "Antal", r["Antal"])
        ok &= n is not None
        if ok and not f.check_duplicate(ctx, row, "Sted", (r["Sted"], r["Skadevirkning"]), seen):
            ok = False
        if ok:
            yield TABLE.name, (row, r["Sted"], y, r["Skadevirkning"], n)
