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


# ---------------------------------------------------------------- free text in raw tables

#: what a free-text value must contain to be a candidate at all (a cheap filter PostgreSQL applies)
_CANDIDATE_SQL = "[0-9]{5}"
#: candidate rows read and updated per round trip by mask_free_text
MASK_BATCH = 2000


def mask_free_text(conn, table: str, columns: Iterable[str], delivery_id: int) -> int:
    """Mask identifier-like numbers in the free-text `columns` of one delivery's rows of raw.`table`.

    Why: a description or remark is typed by a person, who may name a colleague by employee number or CPR
    number. Raw rows reach staging, marts and the certified tables, so the loader masks such numbers in the
    same transaction as the COPY, before the delivery is committed: no other session ever sees them. Set-based
    (PostgreSQL picks the few candidate rows); only those are masked in Python, with the rule reasons use.
    Returns the values changed."""
    from psycopg import sql

    changed = 0
    for column in columns:
        col = sql.Identifier(column)
        update = sql.SQL("update raw.{t} set {c} = %s where ctid = %s::tid").format(c=col, t=sql.Identifier(table))
        # Streamed in batches through a server-side cursor: a large delivery whose free text is full of
        # candidates (a 128 MB register with a case number in every description) must not be held in memory.
        # The cursor reads the snapshot of its declaration, so the updates below never feed back into it.
        with conn.transaction(), conn.cursor(name=f"mask_free_text_{delivery_id}") as cur:
            cur.execute(sql.SQL("select ctid::text, {c} from raw.{t} where delivery_id = %s and {c} ~ %s").format(
                c=col, t=sql.Identifier(table)), (delivery_id, _CANDIDATE_SQL))
            while rows := cur.fetchmany(MASK_BATCH):
                updates = [(masked, ctid) for ctid, value in rows if (masked := mask_identifiers(value)) != value]
                if updates:
                    with conn.cursor() as upd:
                        upd.executemany(update, updates)
                    changed += len(updates)
    return changed


# ---------------------------------------------------------------- exceptions in logs

def describe_exception(exc: BaseException, keep: Iterable[str] = ()) -> str:
    """A one-line account of `exc` (and what caused it) fit for a log: type and masked message.

    Why: a parser or COPY error message often quotes the offending line or value (csv.Error, a decimal
    conversion, PostgreSQL's "invalid input syntax ... '918273'"), and `log.exception` would print it raw
    into the Airflow task log. The traceback's frames add nothing a reader of the task log needs that the
    file, scheme and exception type do not say; a developer reproduces with `trivsel load` on the archived
    file."""
    parts = []
    seen = 0
    while exc is not None and seen < 5:
        first = (str(exc).splitlines() or [""])[0][:300]
        parts.append(f"{type(exc).__name__}: {mask_identifiers(first, keep=keep)}")
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
        seen += 1
    return " <- ".join(parts)
