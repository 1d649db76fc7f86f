"""Masking identifiers in what leaves the loader: reasons, issue values and log lines.

Why: a reason is read by people who may not see employee numbers (audit.delivery.reason reaches
marts/certified.delivery_coverage, the run log, certify's output). A reason quotes delivered values to say
what is wrong ("unknown unit 'X'"), and when a municipality swaps two columns the quoted values are employee
numbers. Employee numbers are digit runs of five or more (six in the sample schemes; a CPR number is ten),
while what a reason legitimately quotes from a unit, code, month or hour column is words, codes, YYYY-MM and
numbers of at most four digits before the decimal separator. So every run of 5+ digits that is not part of a
longer word (a file name, a checksum) is replaced by its length: the row and column stay, the value goes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# A CPR number (ddmmyy-xxxx) first, then any free-standing run of five or more digits.
_CPR = re.compile(r"(?<![0-9A-Za-z])\d{6}-\d{4}(?![0-9A-Za-z])")
_DIGIT_RUN = re.compile(r"(?<![0-9A-Za-z_])\d{5,}(?![0-9A-Za-z_])")


def _mask_match(m: re.Match) -> str:
    digits = sum(c.isdigit() for c in m.group(0))
    return f"<{digits} digits masked>"


def mask_identifiers(text: str | None, keep: Iterable[str] = ()) -> str | None:
    """`text` with every employee-number-like digit run masked; the substrings in `keep` (the delivery's
    file name, which the reason must name) are left as they are."""
    if not text:
        return text
    kept = [k for k in keep if k]
    if not kept:
        return _DIGIT_RUN.sub(_mask_match, _CPR.sub(_mask_match, text))
    pattern = re.compile("(" + "|".join(re.escape(k) for k in sorted(kept, key=len, reverse=True)) + ")")
    parts = pattern.split(text)
    return "".join(p if i % 2 else mask_identifiers(p) for i, p in enumerate(parts))


def looks_like_identifier(value: str | None) -> bool:
    """A value that could be an employee number (or a CPR number): never shown outside the loader."""
    return bool(value) and mask_identifiers(str(value)) != str(value)


def mask_value(value: str | None) -> str | None:
    """An issue's offending value as stored for readers: kept unless it holds an identifier-like number."""
    return mask_identifiers(value) if value is not None else None
