"""Helpers shared by the hr_absence schemes (hr_payroll_csv, hr_unit_workbook, hr_unit_year_summary).

Reference lists (units and their aliases, absence codes, metric labels) are read from the dbt seeds so that
the parser validates against the same lists the models join: a code or label is added in one place only.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path

from trivsel import settings
from trivsel.sources.base import DeliveryContext, FileRejected


def seeds_dir() -> Path:
    return settings.dbt_dir() / "seeds"


@lru_cache(maxsize=8)
def _read_seed(relative: str) -> tuple[dict[str, str], ...]:
    path = seeds_dir() / relative
    with path.open(encoding="utf-8", newline="") as fh:
        return tuple(csv.DictReader(fh))


def unit_lookup(ctx: DeliveryContext) -> dict[str, str]:
    """Lower-cased unit name or alias -> canonical unit name, for the delivering municipality."""
    lookup = {name.strip().casefold(): name for name in ctx.unit_names}
    for row in _read_seed("common/unit_aliases.csv"):
        if row["municipality_code"].strip() == ctx.municipality_code:
            lookup[row["alias"].strip().casefold()] = row["unit_name"].strip()
    return lookup


def absence_codes(scheme: str) -> set[str]:
    return {r["absence_code"].strip().upper() for r in _read_seed("absence/absence_codes.csv")
            if r["scheme"] == scheme}


def metric_labels() -> dict[str, str]:
    """summary_label_da (case-folded) -> metric code."""
    return {r["summary_label_da"].strip().casefold(): r["metric"] for r in _read_seed("absence/absence_metrics.csv")}


def value_markers() -> set[str]:
    return {r["marker"].strip().casefold() for r in _read_seed("absence/absence_value_markers.csv")}


# --- encoding ------------------------------------------------------------------------------------------

_BOMS = {b"\xef\xbb\xbf": "UTF-8", b"\xff\xfe": "UTF-16 LE", b"\xfe\xff": "UTF-16 BE"}


def cp1252_lines(path: Path) -> Iterator[str]:
    """Stream a cp1252 text file line by line, refusing anything that is not cp1252.

    A UTF-8 file read as cp1252 would silently turn 'ø' into 'Ã¸', so:
    - a byte-order mark is refused;
    - a line with non-ASCII bytes that is valid UTF-8 is refused (Danish cp1252 text with æ/ø/å as single
      bytes is practically never valid UTF-8);
    - a byte that cp1252 does not define (0x81, 0x8D, 0x8F, 0x90, 0x9D) is refused.
    """
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if number == 1:
                for bom, name in _BOMS.items():
                    if raw.startswith(bom):
                        raise FileRejected(f"wrong encoding: the file starts with a {name} byte-order "
                                           f"mark; expected cp1252 (Windows-1252)", row=1)
            if not raw.isascii():
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError:
                    pass
                else:
                    raise FileRejected(f"wrong encoding: row {number} is UTF-8, expected cp1252 "
                                       f"(Windows-1252); re-export the file as cp1252", row=number)
            try:
                yield raw.decode("cp1252")
            except UnicodeDecodeError as exc:
                raise FileRejected(f"wrong encoding: row {number} has byte 0x{raw[exc.start]:02X} "
                                   f"that is not cp1252 (Windows-1252)", row=number) from exc


def csv_rows(path: Path, expected: tuple[str, ...], ctx: DeliveryContext) -> Iterator[tuple[int, dict[str, str]]]:
    """(row number, {header: value}) for a `;`-separated cp1252 file; header is row 1 and must hold `expected`.

    A data row with more or fewer fields than the header is rejected with its row (as every CSV scheme does:
    an extra field may carry meaning that would otherwise be dropped without a word).
    """
    reader = csv.reader(cp1252_lines(path), delimiter=";")
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise FileRejected("the file is empty") from None
    except csv.Error as exc:
        raise FileRejected(f"row 1 is not valid ';'-separated text: {exc}", row=1) from None
    if len(header) == 1 and "," in header[0]:
        raise FileRejected("row 1 is not ';'-separated (found ','); expected the columns "
                           f"{';'.join(expected)}", row=1)
    missing = [c for c in expected if c not in header]
    if missing:
        raise FileRejected(f"row 1 lacks the column(s) {', '.join(missing)}; expected "
                           f"{';'.join(expected)}", row=1)
    extra = [c for c in header if c not in expected]
    if extra:
        # Schema drift: a column nobody has mapped may carry meaning we would silently drop.
        raise FileRejected(f"row 1 has unexpected column(s) {', '.join(repr(c) for c in extra)}; expected "
                           f"exactly {';'.join(expected)}", row=1)
    index = {c: header.index(c) for c in expected}
    number = 1
    try:
        for number, values in enumerate(reader, start=2):
            if not any(v.strip() for v in values):
                continue
            if len(values) != len(header):
                ctx.reject(row=number, column=None, reason=field_count_reason(len(values), len(header)))
                continue
            yield number, {c: values[i].strip() for c, i in index.items()}
    except csv.Error as exc:
        raise FileRejected(f"row {number + 1} is not valid ';'-separated text: {exc}", row=number + 1) from None


def field_count_reason(fields: int, header: int) -> str:
    """The reason every CSV scheme gives a row whose field count differs from its header's."""
    return f"{fields} fields, the header has {header}"


# --- numbers -------------------------------------------------------------------------------------------

_NUMBER_RE = re.compile(r"^-?\d{1,3}(\.\d{3})*(,\d+)?$|^-?\d+([.,]\d+)?$")
#: one '.' followed by exactly three digits and no ',': '0.740' is 0.74 with a decimal point or 740 with a
#: thousands separator, and nothing in the value says which
_AMBIGUOUS_RE = re.compile(r"^-?\d{1,3}\.\d{3}$")
AMBIGUOUS_REASON = ("ambiguous number: '.' followed by three digits may be a thousands separator or a decimal "
                    "point; deliver decimals with a comma (0,740) and no thousands separator")


class AmbiguousNumber(ValueError):
    """A value that reads as two different numbers ('0.740': 0.74 or 740)."""


def danish_decimal(text: str) -> Decimal:
    """'1.234,50' / '7,00' / '7.00' / '12' / '1.234.567' -> Decimal. Raises ValueError; AmbiguousNumber for
    '0.740' or '1.234' (a single '.' before three digits, no ','), which is never guessed."""
    t = text.strip().replace("\u2212", "-").replace(" ", "")
    if _AMBIGUOUS_RE.match(t):
        raise AmbiguousNumber(AMBIGUOUS_REASON)
    if not _NUMBER_RE.match(t):
        raise ValueError(f"not a number: {text!r}")
    if "," in t:
        t = t.replace(".", "").replace(",", ".")
    elif re.match(r"^-?\d{1,3}(\.\d{3})+$", t):
        t = t.replace(".", "")  # thousands separators only
    try:
        return Decimal(t)
    except InvalidOperation as exc:  # pragma: no cover - the regex guards this
        raise ValueError(f"not a number: {text!r}") from exc


def excel_text(value: object) -> str:
    """A workbook cell as the text a reader sees: numbers with a decimal comma ('7,00')."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float | Decimal):
        f = float(value)
        text = f"{f:.2f}" if round(f, 2) == f else repr(f)
        return text.replace(".", ",")
    return str(value).strip()


@dataclass(frozen=True)
class ParsedValue:
    """A delivered figure such as '7,00', 'Ej oplyst', '-', '(19,78)' or '7,00/(10,24)', taken apart."""

    text: str
    marker: str | None
    value: Decimal | None
    in_parentheses: bool | None
    second_value: Decimal | None
    second_in_parentheses: bool | None

    def row(self) -> tuple:
        return (self.text, self.marker, self.value, self.in_parentheses, self.second_value,
                self.second_in_parentheses)


_PART_RE = re.compile(r"^\(\s*([^()]+?)\s*\)$")


def _part(text: str) -> tuple[Decimal, bool]:
    t = text.strip()
    m = _PART_RE.match(t)
    number = danish_decimal(m.group(1) if m else t)
    if number < 0:
        raise ValueError(f"negative figure {text.strip()!r}")
    return number, bool(m)


def parse_figure(text: str) -> ParsedValue:
    """Take a delivered figure apart. Raises ValueError with a reason for anything unrecognised."""
    t = text.strip()
    if not t:
        raise ValueError("empty cell (a missing figure must be delivered as 'Ej oplyst')")
    if t.casefold() in value_markers():
        return ParsedValue(t, t, None, None, None, None)
    parts = t.split("/")
    if len(parts) > 2:
        raise ValueError(f"more than two figures in {t!r}")
    first, first_paren = _part(parts[0])
    if len(parts) == 2:
        second, second_paren = _part(parts[1])
        return ParsedValue(t, None, first, first_paren, second, second_paren)
    return ParsedValue(t, None, first, first_paren, None, None)
