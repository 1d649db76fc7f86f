"""hr_payroll_csv: employee-level monthly payroll extract (Høje-Taastrup, monthly from 2014).

See docs/sources/hr_payroll_csv.md. `;`-separated, cp1252, decimal commas, Danish headers; one row per
employee x month x absence code, employees without absence as one row with an empty code and 0 hours.
Employee numbers are pseudonymised here (keyed HMAC-SHA256): they never reach the warehouse in clear.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

from trivsel.sources._absence_common import (
    AMBIGUOUS_REASON,
    AmbiguousNumber,
    absence_codes,
    csv_rows,
    danish_decimal,
    unit_lookup,
)
from trivsel.sources.base import Column, DeliveryContext, RawTable, Scheme
from trivsel.sources.bulk import BulkFallback, BulkPlan, copy_value

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
                Column("absence_text", "text", "Fraværstekst as delivered", free_text=True),
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
    except AmbiguousNumber:
        ctx.reject(row=row, column=column, reason=AMBIGUOUS_REASON, value=text)
        return None
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
    for row, rec in csv_rows(path, HEADER, ctx):
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


# --- the set-based path (trivsel.sources.bulk) -----------------------------------------------------------
#
# The same checks as `parse`, in SQL over the COPYed file. What only Python does exactly (str.casefold and
# str.upper of units and codes, the repr() in their reasons, the keyed pseudonyms) is computed in Python
# once per *distinct* value in `prepare` and joined in. Anything PostgreSQL's COPY might read differently
# from csv.reader makes the plan step aside (None) or the loader fall back, so the parser decides it.
#
# `prepare` builds, in temporary tables dropped at commit: bulk_pseudonym / bulk_unit / bulk_code (the
# distinct values), bulk_rows (one typed row per data row, one pass over the landing table) and bulk_issue
# (every problem, one pass over bulk_rows plus one sort for the duplicate and denominator rules). The checks
# then only read bulk_issue, one SELECT per parser check in the parser's order.

#: landing identifiers of the file's columns
_IDENT = {"Medarbejdernr": "medarbejdernr", "Enhed": "enhed", "Måned": "maaned", "Fraværskode": "fravaerskode",
          "Fraværstekst": "fravaerstekst", "Fraværstimer": "fravaerstimer", "Normtimer": "normtimer",
          "Årsværk": "aarsvaerk"}
#: what str.strip() removes from cp1252 text (ASCII whitespace, 0x1C-0x1F, NBSP)
_WS = "".join(ch for ch in bytes(range(256)).decode("cp1252", errors="ignore") if ch.isspace())
#: byte classes for the encoding pre-scan: L = a UTF-8 lead byte, C = a continuation byte, X = NUL or a byte
#: cp1252 does not define. "LC" (a UTF-8 multibyte sequence) or X: the Python parser decides the file.
_CLASSES = bytes(b"X"[0] if b in (0x00, 0x81, 0x8D, 0x8F, 0x90, 0x9D) else b"L"[0] if 0xC2 <= b <= 0xF4
                 else b"C"[0] if 0x80 <= b <= 0xBF else b"a"[0] for b in range(256))
#: a quoted field that csv.reader and COPY read alike: the whole field quoted, no line break inside
_QUOTED_RE = re.compile(rb'(?:^|(?<=;))"(?:[^"\r\n]|"")*"(?=;|\r?$)', re.MULTILINE)
_SCAN_CHUNK = 8 * 1024 * 1024
_COPY_BLOCK = 5000  # rows per write of copy_distinct
# danish_decimal's patterns with ASCII digits (\d matches no other digit in cp1252 text); the first is a fast
# path for the usual '7,40' / '12' that gives the same value.
_PLAIN_SQL = r"^[0-9]+(,[0-9]+)?$"
_NUMBER_SQL = r"^-?[0-9]{1,3}(\.[0-9]{3})*(,[0-9]+)?$|^-?[0-9]+([.,][0-9]+)?$"
_THOUSANDS_SQL = r"^-?[0-9]{1,3}(\.[0-9]{3})+$"
_AMBIGUOUS_SQL = r"^-?[0-9]{1,3}\.[0-9]{3}$"
_MONTH_SQL = r"^[0-9]{4}-?[0-9]{2}$"
_NUMBER_COLUMNS = (("Fraværstimer", "hours", MAX_MONTH_HOURS, "hours in a month"),
                   ("Normtimer", "contractual", MAX_MONTH_HOURS, "hours in a month"),
                   ("Årsværk", "fte", MAX_FTE, "FTE for one employee"))


def _lit(text: str) -> str:
    """A SQL string literal (standard_conforming_strings)."""
    return "'" + text.replace("'", "''") + "'"


def _suspect_bytes(path: Path) -> bool:
    """Whether the file has bytes only the Python parser judges exactly: possible UTF-8, undefined cp1252
    bytes, NUL, or a double quote other than around a whole one-line field. C-speed (translate, find)."""
    tail = b""
    quotes = False
    with path.open("rb") as fh:
        while chunk := fh.read(_SCAN_CHUNK):
            classes = (tail + chunk).translate(_CLASSES)
            if b"LC" in classes or b"X" in classes:
                return True
            quotes = quotes or b'"' in chunk
            tail = chunk[-1:]
    if quotes:
        data = path.read_bytes()
        if b'"' in _QUOTED_RE.sub(b"", data):
            return True
    return False


def _header(path: Path) -> list[str] | None:
    """The header row's column names in file order, as csv_rows reads them (None: unsure)."""
    with path.open("rb") as fh:
        first = fh.readline()
    try:
        fields = next(csv.reader([first.decode("cp1252")], delimiter=";"), [])
    except (csv.Error, UnicodeDecodeError):
        return None
    return [f.strip() for f in fields]


def _number_sql(t: str) -> str:
    """danish_decimal of the stripped text t, as numeric; null when it is not a number. (U+2212 cannot occur:
    cp1252 has no such character.)"""
    n = f"replace({t}, ' ', '')"
    return (f"case when {n} ~ {_lit(_PLAIN_SQL)} then replace({n}, ',', '.')::numeric "
            f"when {n} ~ {_lit(_AMBIGUOUS_SQL)} then null "
            f"when {n} ~ {_lit(_NUMBER_SQL)} then (case when strpos({n}, ',') > 0 "
            f"then replace(replace({n}, '.', ''), ',', '.') when {n} ~ {_lit(_THOUSANDS_SQL)} "
            f"then replace({n}, '.', '') else {n} end)::numeric end")


def bulk_plan(path: Path, ctx: DeliveryContext) -> BulkPlan | None:
    """`parse`, set-based (see trivsel.sources.bulk). None when the Python parser must take the file."""
    rows = csv_rows(path, HEADER, ctx)
    try:
        next(rows, None)  # the header checks (and the first rows' encoding), raising as parse would
    finally:
        rows.close()
    if ctx.pseudonym_key is None or _suspect_bytes(path):
        return None
    header = _header(path)
    if header is None or sorted(header) != sorted(HEADER):
        return None  # a column twice: csv_rows reads the first one, COPY cannot tell
    codes = absence_codes(SCHEME.name)
    units = unit_lookup(ctx)

    def stripped(name: str) -> str:
        return f"btrim(coalesce(l.{_IDENT[name]}, ''), %(ws)s)"

    def copy_distinct(conn, table: str, name: str, make_row, *, empty: bool = False) -> None:
        """The column's distinct stripped values, through make_row in Python, COPYed into `table`. Written
        as COPY text in blocks, not row by row (a national month has ~550,000 distinct employees)."""
        where = "" if empty else f" where {stripped(name)} <> ''"
        with conn.cursor() as cur:
            values = [r[0] for r in cur.execute(
                f"select distinct {stripped(name)} from bulk_landing l{where}", {"ws": _WS})]
            with cur.copy(f"copy {table} from stdin") as copy:
                for start in range(0, len(values), _COPY_BLOCK):
                    copy.write("".join("\t".join(map(copy_value, make_row(value))) + "\n"
                                       for value in values[start:start + _COPY_BLOCK]))

    # Every problem, numbered in the parser's order within a row.
    checks: list[tuple[str, str, str]] = [  # (column, reason or null, value)
        ("'Medarbejdernr'", "case when employee = '' then 'empty employee number' end", "null"),
        ("'Enhed'", "unit_reason", "unit_text"),
        ("'Måned'", "case when not month_ok then 'not a month (YYYY-MM)' when to_char(month_start, "
                    "'YYYY-MM') <> %(period)s::text then 'month ' || to_char(month_start, 'YYYY-MM') || "
                    "' is not the delivery''s period ' || %(period)s::text end", "month_text"),
    ]
    for column, name, _bound, _why in _NUMBER_COLUMNS:
        checks.append((_lit(column), f"case when replace({name}_text, ' ', '') ~ {_lit(_AMBIGUOUS_SQL)} "
                                     f"then {_lit(AMBIGUOUS_REASON)} "
                                     f"when {name} is null then 'not a number (decimal comma expected)' "
                                     f"when {name} < 0 then "
                                     f"{_lit(f'negative {column}: hours and FTE cannot be negative')} end",
                       f"{name}_text"))
    for column, name, bound, why in _NUMBER_COLUMNS:
        checks.append((_lit(column), f"case when {name} > {bound} then {_lit(f'absurd {column} ')} || "
                                     f"{name}::text || {_lit(f': more than {bound} {why}')} end",
                       f"{name}_text"))
    checks += [
        ("'Fraværskode'", "case when code_text = '' and hours > 0 then 'empty absence code with ' || "
                          "hours_text || ' absence hours' when code_text <> '' then code_reason end",
         "case when code_text <> '' then code_text end"),
        # the parser checks these for every row with an employee number, whatever else is wrong with it
        ("'Medarbejdernr'", "case when employee <> '' and dup_first <> source_row then 'the same employee, "
                            "month and absence code ' || coalesce(code, '(none)') || ' as row ' || dup_first || "
                            "' (duplicate employee-month)' end", "null"),
        ("'Normtimer'", "case when employee <> '' and contractual >= 0 and fte >= 0 and "
                        "(contractual <> den_first[2] or fte <> den_first[3]) then 'contractual hours or FTE "
                        "differ from row ' || den_first[1] || ' for the same employee-month' end", "null"),
    ]

    def prepare(conn) -> None:
        p = {"ws": _WS, "period": ctx.period}
        if conn.info.parameter_status("server_encoding") != "UTF8":
            raise BulkFallback("the server encoding is not UTF8")
        if conn.execute("select exists (select 1 from bulk_landing l where "
                        + " or ".join(f"octet_length(l.{i}) >= %(limit)s" for i in _IDENT.values()) + ")",
                        {"limit": csv.field_size_limit()}).fetchone()[0]:
            raise BulkFallback("a field longer than csv's field size limit")
        # Rows of nothing but whitespace (NBSP, 0x1C-0x1F too) are skipped by the parser.
        conn.execute("delete from bulk_landing l where " + " and ".join(f"{stripped(h)} = ''" for h in HEADER), p)
        for table in ("bulk_pseudonym", "bulk_unit", "bulk_code", "bulk_rows", "bulk_issue"):
            conn.execute(f"drop table if exists {table}")
        # Pseudonyms, with the key that never leaves this process; a small integer per pseudonym for cheap
        # grouping ('007' and '7' are one employee). No primary key: the numbers are distinct by construction
        # (select distinct), the one join reads the table whole (a hash join), and building the index under
        # the database's libc collation cost 0.14 s against 0.06 s for the COPY of 44,000 numbers (medians).
        conn.execute("create temp table bulk_pseudonym (employee_number text not null, "
                     "employee_pseudonym text not null, employee_key integer not null) on commit drop")
        keys: dict[str, int] = {}

        def pseudonym_row(number: str) -> tuple:
            pseudonym = ctx.pseudonymise(number)
            return number, pseudonym, keys.setdefault(pseudonym, len(keys))

        copy_distinct(conn, "bulk_pseudonym", "Medarbejdernr", pseudonym_row)
        # Units and codes: Python's casefold/upper and repr, once per distinct value.
        conn.execute("create temp table bulk_unit (unit_text text primary key, reason text) on commit drop")
        copy_distinct(conn, "bulk_unit", "Enhed", lambda unit_text: (
            unit_text, None if unit_text.casefold() in units else
            f"unknown unit {unit_text!r} for municipality {ctx.municipality_code} (not a unit in "
            f"config/municipalities.yml nor an alias in dbt/seeds/common/unit_aliases.csv)"), empty=True)
        conn.execute("create temp table bulk_code (code_text text primary key, code text not null, reason text) "
                     "on commit drop")
        copy_distinct(conn, "bulk_code", "Fraværskode", lambda code_text: (
            code_text, code_text.upper(), None if code_text.upper() in codes else
            f"unknown absence code {code_text.upper()!r} (known: {', '.join(sorted(codes))}; see "
            f"dbt/seeds/absence/absence_codes.csv)"))
        # One typed row per data row: stripped texts, parsed month and numbers (null = not a number).
        conn.execute("""create temp table bulk_rows (
            source_row bigint, employee text, employee_pseudonym text, employee_key integer, unit_text text,
            unit_reason text, month_text text, month_ok boolean, month_start date, code_text text, code text,
            code_reason text, absence_text text, hours_text text, contractual_text text, fte_text text,
            hours numeric, contractual numeric, fte numeric) on commit drop""")
        conn.execute(f"""
            insert into bulk_rows
            select s.source_row, s.employee, e.employee_pseudonym, e.employee_key, s.unit_text, u.reason,
                   s.month_text, s.month_ok,
                   case when s.month_ok then make_date(left(s.month_text, 4)::int, right(s.month_text, 2)::int, 1)
                   end,
                   s.code_text, c.code, c.reason, s.absence_text, s.hours_text, s.contractual_text, s.fte_text,
                   {_number_sql('s.hours_text')}, {_number_sql('s.contractual_text')}, {_number_sql('s.fte_text')}
            from (select t.*, t.month_text ~ {_lit(_MONTH_SQL)} and right(t.month_text, 2) between '01' and '12'
                              as month_ok
                  from (select l.source_row, {stripped('Medarbejdernr')} as employee,
                               {stripped('Enhed')} as unit_text, {stripped('Måned')} as month_text,
                               {stripped('Fraværskode')} as code_text, {stripped('Fraværstekst')} as absence_text,
                               {stripped('Fraværstimer')} as hours_text,
                               {stripped('Normtimer')} as contractual_text, {stripped('Årsværk')} as fte_text
                        from bulk_landing l offset 0) as t offset 0) as s
            left join bulk_pseudonym e on e.employee_number = s.employee
            left join bulk_unit u on u.unit_text = s.unit_text
            left join bulk_code c on c.code_text = s.code_text""", p)
        if conn.execute("select exists (select 1 from bulk_rows where month_ok and month_text < '1000')"
                        ).fetchone()[0]:
            raise BulkFallback("a month before year 1000")  # date() refuses year 0, strftime does not pad

        # Only rows with a problem are expanded into one candidate issue per check (the usual file has none).
        suspect = (f"employee = '' or unit_reason is not null or not month_ok "
                   f"or to_char(month_start, 'YYYY-MM') <> %(period)s::text "
                   f"or not coalesce(hours >= 0 and contractual >= 0 and fte >= 0, false) "
                   f"or hours > {MAX_MONTH_HOURS} or contractual > {MAX_MONTH_HOURS} or fte > {MAX_FTE} "
                   f"or (code_text = '' and hours > 0) or code_reason is not null")
        values = ", ".join(f"({k}, {col}, {reason}, {value})" for k, (col, reason, value) in enumerate(checks))
        conn.execute(f"""
            create temp table bulk_issue on commit drop as
            select r.source_row, x.check_order, x.column_name, x.reason, x.value
            from (select b.*, w.dup_first, w.den_first
                  from bulk_rows b
                  left join (
                    -- duplicates and differing denominators: windows over a narrow projection
                    select source_row, dup_first, den_first from (
                      select source_row, contractual, fte,
                             min(source_row) over (partition by employee_key, month_text collate "C",
                                                                coalesce(code, '') collate "C") as dup_first,
                             min(array[source_row, contractual, fte]) filter (
                                 where contractual >= 0 and fte >= 0)
                               over (partition by employee_key, month_text collate "C") as den_first
                      from bulk_rows where employee <> '') as n
                    where dup_first <> source_row
                       or (contractual >= 0 and fte >= 0
                           and (contractual <> den_first[2] or fte <> den_first[3]))) as w using (source_row)
                  where w.source_row is not null or {suspect}) as r
            cross join lateral (values {values}) as x(check_order, column_name, reason, value)
            where x.reason is not null""".replace("%(period)s", _lit(ctx.period)))

    return BulkPlan(
        landing_columns=[_IDENT[h] for h in header],
        copy_options="format csv, header true, delimiter ';', encoding 'WIN1252'",
        # one SELECT per parser check, in its order (bulk.run orders by row, then by check)
        checks=[f"select source_row, column_name, reason, value from bulk_issue where check_order = {k}"
                for k in range(len(checks))],
        inserts={"hr_payroll_absence": (
            "select source_row, employee_pseudonym, unit_text, month_start, code, nullif(absence_text, ''), "
            "hours, contractual, fte from bulk_rows")},
        prepare=prepare)
