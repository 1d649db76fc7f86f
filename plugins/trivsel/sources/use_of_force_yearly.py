"""Yearly counts of use of force ('magtanvendelser', Serviceloven ch. 24), with how many concern a
resident who was not in the project (docs/sources/use_of_force_yearly.md).

A reported 0 is a row with 0. A municipality that sends nothing has no delivery: not_delivered, never 0.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from trivsel.sources import _incident_csv as f
from trivsel.sources.base import Column, DeliveryContext, RawTable, Scheme

HEADER = ("År", "Antal magtanvendelser", "Heraf borger uden for projektet", "Bemærkning")

TABLE = RawTable(
    "use_of_force_count",
    (
        Column("source_row", "integer", "line in the file, header = 1"),
        Column("year", "integer", "År: the calendar year counted"),
        Column("n_use_of_force", "integer", "Antal magtanvendelser"),
        Column("n_non_participant", "integer",
               "Heraf borger uden for projektet: of those, concerning a resident not in the project (blank = none noted)"),
        Column("note", "text", "Bemærkning: free text (the reason for the non-participant count)", free_text=True),
    ),
    description="Yearly use-of-force counts",
)

SCHEME = Scheme(
    name="use_of_force_yearly",
    source="use_of_force",
    suffixes=(".csv",),
    tables=(TABLE,),
    description=__doc__.splitlines()[0],
)


def parse(path: Path, ctx: DeliveryContext) -> Iterator[tuple[str, tuple]]:
    year = f.check_yearly_period(ctx)
    seen: dict = {}
    for row, r in f.read_rows(path, ctx, HEADER):
        y = f.parse_year(ctx, row, "År", r["År"], year)
        ok = y is not None
        n = f.parse_count(ctx, row, "Antal magtanvendelser", r["Antal magtanvendelser"])
        ok &= n is not None
        col = "Heraf borger uden for projektet"
        k = f.parse_count(ctx, row, col, r[col], blank_ok=True)
        if r[col] != "" and k is None:
            ok = False
        if n is not None and k is not None and k > n:
            f.reject(ctx, row, col, f"more than the {n} uses of force in the year", r[col])
            ok = False
        if k and not r["Bemærkning"]:
            f.reject(ctx, row, "Bemærkning", "a non-participant count needs a note saying why", r["Bemærkning"])
            ok = False
        if ok and y is not None and not f.check_duplicate(ctx, row, "År", y, seen):
            ok = False
        if ok:
            yield TABLE.name, (row, y, n, k, r["Bemærkning"] or None)
