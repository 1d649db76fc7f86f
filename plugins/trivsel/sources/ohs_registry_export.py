"""Høje-Taastrup's occupational-injury registry export: one row per registration (docs/sources/ohs_registry_export.md).

Labels stay as the registry writes them; dbt/seeds/incidents/incident_label_map.csv maps them to the
canonical incident classes. The parser accepts exactly the labels that seed (and incident_with_absence.csv)
lists, so a new label is quarantined until someone maps it there.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from trivsel.sources import _incident_csv as f
from trivsel.sources.base import Column, DeliveryContext, RawTable, Scheme

HEADER = ("Sagsnr", "Dato", "Enhed", "Hændelsestype", "Skadetype", "Fravær", "Beskrivelse")

SCHEME_NAME = "ohs_registry_export"


def event_types() -> frozenset[str]:
    return f.seed_labels(SCHEME_NAME, "event_type")


def injury_types() -> frozenset[str]:
    return f.seed_labels(SCHEME_NAME, "injury_type")


def absence_labels() -> frozenset[str]:
    return f.absence_labels(SCHEME_NAME)


TABLE = RawTable(
    "ohs_registration",
    (
        Column("source_row", "integer", "line in the file, header = 1"),
        Column("case_id", "text", "Sagsnr: the registry's case id, unique per municipality"),
        Column("event_date", "date", "Dato: date of the event"),
        Column("unit_label", "text", "Enhed: unit as the registry writes it"),
        Column("event_type", "text", "Hændelsestype as delivered: 'Nærvedhændelse' or 'Arbejdsulykke'"),
        Column("injury_type", "text", "Skadetype as delivered (the registry's Danish labels)"),
        Column("absence_label", "text", "Fravær as delivered: 'Med fravær' or 'Uden fravær'"),
        Column("description", "text", "Beskrivelse: free text", free_text=True),
    ),
    description="HT occupational-injury registry export, one row per registration",
)

SCHEME = Scheme(
    name=SCHEME_NAME,
    source="incidents",
    suffixes=(".csv",),
    tables=(TABLE,),
    description=__doc__.splitlines()[0],
)


def parse(path: Path, ctx: DeliveryContext) -> Iterator[tuple[str, tuple]]:
    year = f.check_yearly_period(ctx)
    units = f.known_unit_names(ctx)
    seen: dict = {}
    events, injuries, absences = event_types(), injury_types(), absence_labels()
    for row, r in f.read_rows(path, ctx, HEADER):
        ok = True
        case_id = r["Sagsnr"]
        if case_id == "":
            f.reject(ctx, row, "Sagsnr", "case id is missing", case_id)
            ok = False
        elif not f.check_duplicate(ctx, row, "Sagsnr", case_id, seen):
            ok = False
        event_date = f.parse_date(ctx, row, "Dato", r["Dato"], year)
        ok &= event_date is not None
        ok &= f.check_unit(ctx, row, "Enhed", r["Enhed"], units)
        ok &= f.check_label(ctx, row, "Hændelsestype", r["Hændelsestype"], events)
        ok &= f.check_label(ctx, row, "Skadetype", r["Skadetype"], injuries)
        ok &= f.check_label(ctx, row, "Fravær", r["Fravær"], absences)
        if ok:
            yield TABLE.name, (row, case_id, event_date, r["Enhed"], r["Hændelsestype"], r["Skadetype"],
                               r["Fravær"], r["Beskrivelse"] or None)
