"""Høje-Taastrup's case review of registry cases (docs/sources/ohs_case_review.md).

One row per reviewed registration: whether the review found violence in it (besides the registered injury
type), and whether the episode is left out of the evaluation, with the reason (e.g. a resident who was not
in the project). Excluded episodes stay in the warehouse, flagged; nothing is deleted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from trivsel.sources import _incident_csv as f
from trivsel.sources.base import Column, DeliveryContext, Partner, RawTable, Scheme

HEADER = ("Sagsnr", "Dato", "Også vold", "Udeladt", "Begrundelse")
YES_NO = {"Ja": True, "Nej": False}

TABLE = RawTable(
    "ohs_case_review",
    (
        Column("source_row", "integer", "line in the file, header = 1"),
        Column("case_id", "text", "Sagsnr: the registry case reviewed"),
        Column("event_date", "date", "Dato: date of the registered event"),
        Column("also_violence_label", "text", "Også vold as delivered ('Ja'/'Nej')"),
        Column("also_violence", "boolean", "the review found violence in the episode"),
        Column("excluded_label", "text", "Udeladt as delivered ('Ja'/'Nej')"),
        Column("excluded", "boolean", "the episode is left out of the evaluation"),
        Column("exclusion_reason", "text", "Begrundelse: why (required when excluded)", free_text=True),
    ),
    description="HT case review of registry cases",
)

SCHEME = Scheme(
    name="ohs_case_review",
    source="incidents",
    suffixes=(".csv",),
    tables=(TABLE,),
    description=__doc__.splitlines()[0],
    # Every reviewed case must be a registration of the year's registry export (same municipality, same
    # period YYYY-12). A review whose export is missing or quarantined waits for it (trivsel.consistency).
    requires=(Partner(
        scheme="ohs_registry_export",
        what="cases (Sagsnr)",
        orphans_sql="""
            select review.source_row
              from raw.ohs_case_review as review
             where review.delivery_id = %(delivery_id)s
               and not exists (
                   select 1
                     from raw.ohs_registration as registration
                     join audit.delivery as d on d.delivery_id = registration.delivery_id
                    where d.status = 'loaded' and d.scheme = 'ohs_registry_export'
                      and d.municipality_code = %(municipality_code)s and d.period = %(period)s
                      and registration.case_id = review.case_id)
             order by review.source_row""",
    ),),
)


def parse(path: Path, ctx: DeliveryContext) -> Iterator[tuple[str, tuple]]:
    year = f.check_yearly_period(ctx)
    seen: dict = {}
    known = frozenset(YES_NO)
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
        ok &= f.check_label(ctx, row, "Også vold", r["Også vold"], known)
        ok &= f.check_label(ctx, row, "Udeladt", r["Udeladt"], known)
        reason = r["Begrundelse"] or None
        if r["Udeladt"] == "Ja" and reason is None:
            f.reject(ctx, row, "Begrundelse", "an excluded episode needs a reason", reason)
            ok = False
        if ok:
            yield TABLE.name, (row, case_id, event_date, r["Også vold"], YES_NO[r["Også vold"]],
                               r["Udeladt"], YES_NO[r["Udeladt"]], reason)
