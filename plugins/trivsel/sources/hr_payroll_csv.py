"""hr_payroll_csv: employee-level monthly payroll extract (Høje-Taastrup, monthly from 2014).

See docs/sources/hr_payroll_csv.md. `;`-separated, cp1252, decimal commas, Danish headers; one row per
employee x month x absence code, employees without absence as one row with an empty code and 0 hours.
Employee numbers are pseudonymised here (keyed HMAC-SHA256): they never reach the warehouse in clear.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

from trivsel.sources._absence_common import absence_codes, csv_rows, danish_decimal, unit_lookup
from trivsel.sources.base import Column, DeliveryContext, RawTable, Scheme

HEADER = ("Medarbejdernr", "Enhed", "Måned", "Fraværskode", "Fraværstekst", "Fraværstimer", "Normtimer",
          "Årsværk")

SCHEME = Scheme(
    name="hr_payroll_csv",
    source="hr_absence",
    suffixes=(".csv",),
    description="Employee-level monthly payroll extract: absence hours per employee, month and absence code",
    tables=(
        RawTable(
            "hr_payroll_absence",
            (
                Column("source_row", "integer", "line in the file (header = 1)"),
                Column("employee_pseudonym", "text", "HMAC-SHA256 of the employee number (Medarbejdernr)"),
                Column("unit_text", "text", "Enhed as delivered (a unit name or an alias)"),
                Column("month_start", "date", "first day of the month (Måned)"),
                Column("absence_code", "text", "Fraværskode, upper-cased; null = no absence this month"),
                Column("absence_text", "text", "Fraværstekst as delivered"),
                Column("absence_hours", "numeric", "Fraværstimer"),
                Column("contractual_hours", "numeric", "Normtimer: the employee's contractual hours in the month"),
                Column("fte", "numeric", "Årsværk: the employee's full-time equivalent in the month"),
            ),
            "One row per employee x month x absence code",
        ),
    ),
)

_MONTH_RE = re.compile(r"^(\d{4})-?(\d{2})$")


#: Bounds beyond which a value is a registration error, not a fact: 31 days × 24 h, and 2 FTE.
MAX_MONTH_HOURS = Decimal(744)
MAX_FTE = Decimal(2)


def _number(ctx: DeliveryContext, row: int, column: str, text: str) -> Decimal | None:
    try:
        value = danish_decimal(text)
    except ValueError:
        ctx.reject(row=row, column=column, reason="not a number (decimal comma expected)", value=text)
        return None
    if value < 0:
        ctx.reject(row=row, column=column, reason=f"negative {column}: hours and FTE cannot be negative", value=text)
        return None
    return value


def parse(path: Path, ctx: DeliveryContext) -> Iterator[tuple[str, tuple]]:
    codes = absence_codes(SCHEME.name)
    units = unit_lookup(ctx)
    seen: dict[tuple[str, str, str], int] = {}
    denominators: dict[tuple[str, str], tuple[Decimal, Decimal, int]] = {}
    for row, rec in csv_rows(path, HEADER):
        ok = True
        employee = rec["Medarbejdernr"]
        if not employee:
            ctx.reject(row=row, column="Medarbejdernr", reason="empty employee number")
            ok = False
        unit_text = rec["Enhed"]
        if unit_text.casefold() not in units:
            ctx.reject(row=row, column="Enhed", reason=f"unknown unit "
                       f"{unit_text!r} for municipality {ctx.municipality_code} (not a unit in "
                       f"config/municipalities.yml nor an alias in dbt/seeds/common/unit_aliases.csv)", value=unit_text)
            ok = False
        month_start = None
        m = _MONTH_RE.match(rec["Måned"])
        if not m or not 1 <= int(m.group(2)) <= 12:
            ctx.reject(row=row, column="Måned", reason="not a month (YYYY-MM)",
                       value=rec["Måned"])
            ok = False
        else:
            month_start = date(int(m.group(1)), int(m.group(2)), 1)
            if month_start.strftime("%Y-%m") != ctx.period:
                ctx.reject(row=row, column="Måned", reason=f"month "
                           f"{month_start:%Y-%m} is not the delivery's period {ctx.period}", value=rec["Måned"])
                ok = False
        hours = _number(ctx, row, "Fraværstimer", rec["Fraværstimer"])
        contractual = _number(ctx, row, "Normtimer", rec["Normtimer"])
        fte = _number(ctx, row, "Årsværk", rec["Årsværk"])
        ok = ok and None not in (hours, contractual, fte)
        for column, value, bound, why in (("Fraværstimer", hours, MAX_MONTH_HOURS, "hours in a month"),
                                          ("Normtimer", contractual, MAX_MONTH_HOURS, "hours in a month"),
                                          ("Årsværk", fte, MAX_FTE, "FTE for one employee")):
            if value is not None and value > bound:
                ctx.reject(row=row, column=column, reason=f"absurd {column} {value}: more than {bound} {why}",
                           value=rec[column])
                ok = False
        code = rec["Fraværskode"].upper() or None
        if code is None:
            if hours is not None and hours != 0:
                ctx.reject(row=row, column="Fraværskode", reason=f"empty "
                           f"absence code with {rec['Fraværstimer']} absence hours")
                ok = False
        elif code not in codes:
            ctx.reject(row=row, column="Fraværskode", reason=f"unknown "
                       f"absence code {code!r} (known: {', '.join(sorted(codes))}; see "
                       f"dbt/seeds/absence/absence_codes.csv)", value=rec["Fraværskode"])
            ok = False
        if not employee:
            continue
        pseudonym = ctx.pseudonymise(employee)
        key = (pseudonym, rec["Måned"], code or "")
        if key in seen:
            ctx.reject(row=row, column="Medarbejdernr", reason=f"the same "
                       f"employee, month and absence code {code or '(none)'} as row {seen[key]} (duplicate "
                       f"employee-month)")
            ok = False
        else:
            seen[key] = row
        if contractual is not None and fte is not None:
            first = denominators.setdefault((pseudonym, rec["Måned"]), (contractual, fte, row))
            if (first[0], first[1]) != (contractual, fte):
                ctx.reject(row=row, column="Normtimer", reason=f"contractual hours or FTE differ from row {first[2]} for the same employee-month")
                ok = False
        if ok:
            yield "hr_payroll_absence", (row, pseudonym, unit_text, month_start, code, rec["Fraværstekst"] or None,
                                         hours, contractual, fte)
