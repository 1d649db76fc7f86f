"""Odense's yearly counts of reported accidents related to threats and violence, municipality level, no
units (docs/sources/incident_yearly_aggregate.md)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from trivsel.sources import _incident_csv as f
from trivsel.sources.base import Column, DeliveryContext, RawTable, Scheme

HEADER = ("År", "Type", "Antal", "Bemærkning")


def types() -> frozenset[str]:
    return f.seed_labels("incident_yearly_aggregate", "incident_type")


TABLE = RawTable(
    "incident_year_count",
    (
        Column("source_row", "integer", "line in the file, header = 1"),
        Column("year", "integer", "År: the calendar year counted"),
        Column("incident_type", "text", "Type as delivered: 'Trusler' or 'Vold'"),
        Column("n_incidents", "integer", "Antal: reported accidents of that type in the year"),
        Column("note", "text", "Bemærkning: free text", free_text=True),
    ),
    description="Odense yearly threats and violence counts, municipality level",
)

SCHEME = Scheme(
    name="incident_yearly_aggregate",
    source="incidents",
    suffixes=(".csv",),
    tables=(TABLE,),
    description=__doc__.splitlines()[0],
)


def parse(path: Path, ctx: DeliveryContext) -> Iterator[tuple[str, tuple]]:
    year = f.check_yearly_period(ctx)
    seen: dict = {}
    known_types = types()
    for row, r in f.read_rows(path, ctx, HEADER):
        y = f.parse_year(ctx, row, "År", r["År"], year)
        ok = y is not None
        ok &= f.check_label(ctx, row, "Type", r["Type"], known_types)
        n = f.parse_count(ctx, row, "Antal", r["Antal"])
        ok &= n is not None
        if ok and not f.check_duplicate(ctx, row, "Type", r["Type"], seen):
            ok = False
        if ok:
            yield TABLE.name, (row, y, r["Type"], n, r["Bemærkning"] or None)
