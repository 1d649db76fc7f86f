"""Fredericia's internal incident register (2012 onwards): one row per registration, with unit, type and
subtype (docs/sources/internal_incident_register.md).

Type ('Trussel'/'Vold') and subtype ('chok', 'krænkende adfærd', 'slag', 'ukvemsord', 'slag + ukvemsord',
'andet') stay as delivered; dbt/seeds/incidents/incident_label_map.csv maps the type to the incident class.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from trivsel.sources import _incident_csv as f
from trivsel.sources.base import Column, DeliveryContext, RawTable, Scheme

HEADER = ("Løbenr", "Dato", "Sted", "Type", "Undertype", "Beskrivelse")


def types() -> frozenset[str]:
    return f.seed_labels("internal_incident_register", "incident_type")


def subtypes() -> frozenset[str]:
    return f.seed_labels("internal_incident_register", "subtype")


TABLE = RawTable(
    "internal_incident",
    (
        Column("source_row", "integer", "line in the file, header = 1"),
        Column("incident_id", "text", "Løbenr: the register's running number, unique per municipality"),
        Column("event_date", "date", "Dato: date of the incident"),
        Column("unit_label", "text", "Sted: unit as the register writes it"),
        Column("incident_type", "text", "Type as delivered: 'Trussel' or 'Vold'"),
        Column("subtype", "text", "Undertype as delivered"),
        Column("description", "text", "Beskrivelse: free text", free_text=True),
    ),
    description="Fredericia internal incident register, one row per registration",
)

SCHEME = Scheme(
    name="internal_incident_register",
    source="incidents",
    suffixes=(".csv",),
    tables=(TABLE,),
    description=__doc__.splitlines()[0],
)


def parse(path: Path, ctx: DeliveryContext) -> Iterator[tuple[str, tuple]]:
    year = f.check_yearly_period(ctx)
    units = f.known_unit_names(ctx)
    seen: dict = {}
    known_types, known_subtypes = types(), subtypes()
    for row, r in f.read_rows(path, ctx, HEADER):
        ok = True
        incident_id = r["Løbenr"]
        if incident_id == "":
            f.reject(ctx, row, "Løbenr", "running number is missing", incident_id)
            ok = False
        elif not f.check_duplicate(ctx, row, "Løbenr", incident_id, seen):
            ok = False
        event_date = f.parse_date(ctx, row, "Dato", r["Dato"], year)
        ok &= event_date is not None
        ok &= f.check_unit(ctx, row, "Sted", r["Sted"], units)
        ok &= f.check_label(ctx, row, "Type", r["Type"], known_types)
        ok &= f.check_label(ctx, row, "Undertype", r["Undertype"], known_subtypes)
        if ok:
            yield TABLE.name, (row, incident_id, event_date, r["Sted"], r["Type"], r["Undertype"],
                               r["Beskrivelse"] or None)
