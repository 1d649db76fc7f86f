"""The contract every registration scheme implements (see docs/developing.md).

A scheme turns one delivered file into rows of one or more raw tables. It does not touch the database:
the loader streams what it yields into COPY, so a scheme can be tested on files alone.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

#: Columns the loader puts in front of every raw table; schemes never yield these.
LOAD_COLUMNS: tuple[tuple[str, str], ...] = (
    ("delivery_id", "bigint not null"),
    ("municipality_code", "text not null"),
    ("period", "text not null"),
)


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # a PostgreSQL type: text, integer, numeric, date, boolean
    description: str = ""
    #: free text a person typed (a description, a remark): may hold an employee or CPR number by accident,
    #: so the loader masks identifier-like numbers in it before the delivery is committed
    #: (trivsel.privacy.mask_free_text)
    free_text: bool = False


@dataclass(frozen=True)
class RawTable:
    """One table in the `raw` schema. The first column must be `source_row`."""

    name: str
    columns: tuple[Column, ...]
    description: str = ""
    #: the column naming the part of the file a row comes from (a workbook's sheet), for row accounting;
    #: None: the table name is the part
    part_column: str | None = None

    def __post_init__(self) -> None:
        if not self.columns or self.columns[0].name != "source_row":
            raise ValueError(f"raw table {self.name}: the first column must be source_row")

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def free_text_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.free_text]


@dataclass(frozen=True)
class Partner:
    """A delivery of another scheme, of the same municipality and period, that this scheme's rows refer to.

    `orphans_sql` selects the `source_row` of every row of the dependent delivery (`%(delivery_id)s`) that
    finds no match in a *loaded* delivery of `scheme` of the same municipality (`%(municipality_code)s`) and
    period (`%(period)s`). `what` says in words what a row names ("cases", "waves"), for the reason.
    """

    scheme: str
    what: str
    orphans_sql: str


@dataclass(frozen=True)
class Scheme:
    name: str
    source: str  # survey | hr_absence | incidents | use_of_force
    tables: tuple[RawTable, ...]
    suffixes: tuple[str, ...] = (".csv",)
    description: str = ""
    #: deliveries of other schemes this one must match (trivsel.consistency): checked at ingest, against what
    #: is loaded; a delivery without its partner waits (audit.delivery status 'waiting') instead of loading
    requires: tuple[Partner, ...] = ()
    #: the parser calls ctx.read_row for every data row it reads, and the loader checks that each one
    #: reached raw or a quarantine reason (rows read = rows in raw + rows quarantined)
    accounts_rows: bool = False

    def table(self, name: str) -> RawTable:
        for t in self.tables:
            if t.name == name:
                return t
        raise KeyError(f"scheme {self.name} has no raw table {name}")


class FileRejected(Exception):
    """A problem with the file as a whole: the delivery is quarantined with this reason."""

    def __init__(self, reason: str, *, row: int | None = None, column: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.row = row
        self.column = column


@dataclass(frozen=True)
class RowIssue:
    row: int | None
    column: str | None
    reason: str
    value: str | None = None


@dataclass
class DeliveryContext:
    """What a parser knows about the delivery it parses."""

    municipality_code: str
    period: str  # YYYY-MM
    file_name: str
    municipality: dict[str, Any] = field(default_factory=dict)
    pseudonym_key: bytes | None = None
    issues: list[RowIssue] = field(default_factory=list)
    max_issues: int = 1000
    rows_read: set[tuple[str, int]] = field(default_factory=set)
    #: (key, HMAC keyed with it and fed nothing yet): copied per identifier, so the key schedule is not
    #: recomputed for each of a national month's ~550,000 employees (same digest as hmac.new)
    _keyed: tuple[bytes, Any] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.pseudonym_key is not None:  # a guessable key makes pseudonyms reversible: refuse it here too
            from trivsel.keys import validate_key

            validate_key(self.pseudonym_key, "DeliveryContext")

    @property
    def year(self) -> int:
        return int(self.period[:4])

    @property
    def unit_names(self) -> list[str]:
        return [u["name"] for u in self.municipality.get("units", [])]

    def reject(self, *, row: int | None, column: str | None, reason: str, value: Any = None) -> None:
        """Record a row problem and carry on, so one run reports all of a file's problems at once."""
        if len(self.issues) < self.max_issues:
            shown = None if value is None else str(value)[:200]
            self.issues.append(RowIssue(row, column, reason, shown))

    def read_row(self, row: int, part: str) -> None:
        """A data row was read from `part` (a sheet, or the raw table's name): it must reach raw or a reason."""
        self.rows_read.add((part, row))

    def pseudonymise(self, identifier: str) -> str:
        """Keyed hash of an employee identifier: stable per key, useless without it."""
        if self.pseudonym_key is None:
            raise RuntimeError("no pseudonymisation key: set TRIVSEL_PSEUDONYM_KEY or the Airflow "
                               "connection trivsel_pseudonym_key")
        normalised = identifier.strip().lstrip("0") or "0"
        if self._keyed is None or self._keyed[0] is not self.pseudonym_key:
            self._keyed = (self.pseudonym_key, hmac.new(self.pseudonym_key, digestmod=hashlib.sha256))
        h = self._keyed[1].copy()
        h.update(normalised.encode("utf-8"))
        return h.hexdigest()


class Parser(Protocol):
    def __call__(self, path: Path, ctx: DeliveryContext) -> Iterator[tuple[str, tuple]]: ...


@dataclass(frozen=True)
class SchemeModule:
    scheme: Scheme
    parse: Callable[[Path, DeliveryContext], Iterator[tuple[str, tuple]]]
    #: optional set-based path for large files (trivsel.sources.bulk); returns a BulkPlan or None
    bulk_plan: Callable[[Path, DeliveryContext], Any] | None = None
