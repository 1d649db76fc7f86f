"""Scheme `survey_respondent_csv`: one row per respondent, one column per NFA item code (see
docs/sources/survey_respondent_csv.md).

The file is UTF-8 (with or without a byte-order mark), `;`-separated (`,` is accepted too), with the
columns `respondent`, `enhed` (unit), `maaling` (wave, `YYYY-MM`) and one column per item code of
`dbt/seeds/survey/survey_items.csv`. Answers are the questionnaire's Danish labels; which labels exist is
data (`dbt/seeds/survey/survey_scale_labels.csv`), read here only to reject unknown labels early. The
parser keeps the label as delivered; scoring is dbt's job.

Raw is the file's own shape ("raw as delivered", issue 15): one row of `raw.survey_response_csv` per
respondent, its answers one JSON object `answers` {item code: label as delivered, null when blank}. dbt's
staging (`stg_survey_respondent_csv__survey_answer_csv`) unnests it into today's long rows, one per
respondent × item. Why: the long form was 36 raw rows per respondent (3.6 M at bench scale 1) built by the
loader and scanned again by Great Expectations; the wide row is one per respondent, lands at close to COPY
speed and its object keys are unique by construction (one answer per respondent × item). Why a JSON object
and not one column per item: the items are data (`survey_items.csv`), so a new item changes no DDL. The
target population comes in a separate file of scheme `survey_population_csv`.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from trivsel.sources._text import encoding_reason
from trivsel.sources.base import Column, DeliveryContext, FileRejected, RawTable, Scheme

RESPONDENT_COLUMN = "respondent"
UNIT_COLUMN = "enhed"
WAVE_COLUMN = "maaling"
BASE_COLUMNS = (RESPONDENT_COLUMN, UNIT_COLUMN, WAVE_COLUMN)
WAVE_PATTERN = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
#: the raw table: one row per respondent, as delivered (before issue 15: raw.survey_answer_csv, long)
RESPONSE_TABLE = "survey_response_csv"

SCHEME = Scheme(
    name="survey_respondent_csv",
    source="survey",
    suffixes=(".csv",),
    description="NFA short questionnaire, one row per respondent, one column per item code, Danish labels",
    tables=(
        RawTable(
            RESPONSE_TABLE,
            (
                Column("source_row", "integer", "line in the file (header = 1)"),
                Column("respondent_id", "text", "the respondent's id as delivered (anonymous, per wave)"),
                Column("unit_name", "text", "column enhed: the unit as delivered"),
                Column("wave", "text", "column maaling: the wave, YYYY-MM"),
                Column("answers", "jsonb", "item code (the column header) -> the answer label as delivered "
                                           "(whitespace runs collapsed), JSON null when the cell was blank"),
            ),
            description="one row per respondent as delivered, the item columns as one JSON object",
        ),
    ),
)


# --- the survey seeds (data shared with dbt) --------------------------------------------------------


def survey_seed_dir() -> Path:
    """dbt/seeds/survey of this checkout (or $TRIVSEL_DBT_DIR/seeds/survey)."""
    dbt_dir = os.environ.get("TRIVSEL_DBT_DIR")
    base = Path(dbt_dir) if dbt_dir else Path(__file__).resolve().parents[3] / "dbt"
    return base / "seeds" / "survey"


def _read_seed(name: str) -> list[dict[str, str]]:
    with open(survey_seed_dir() / name, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@lru_cache(maxsize=1)
def load_items() -> dict[str, dict[str, str]]:
    """item_code → row of survey_items.csv, in questionnaire order."""
    return {row["item_code"]: row for row in _read_seed("survey_items.csv")}


@lru_cache(maxsize=1)
def load_scale_labels() -> dict[str, dict[str, dict[str, str]]]:
    """scale → label_da → row of survey_scale_labels.csv."""
    scales: dict[str, dict[str, dict[str, str]]] = {}
    for row in _read_seed("survey_scale_labels.csv"):
        scales.setdefault(row["scale"], {})[row["label_da"]] = row
    return scales


@lru_cache(maxsize=1)
def load_workbook_codes() -> dict[tuple[str, str], dict[int, str]]:
    """(scale, direction) → workbook code → label_da (survey_workbook_codes.csv)."""
    codes: dict[tuple[str, str], dict[int, str]] = {}
    for row in _read_seed("survey_workbook_codes.csv"):
        codes.setdefault((row["scale"], row["direction"]), {})[int(row["workbook_code"])] = row["label_da"]
    return codes


def normalise_label(value: str) -> str:
    return " ".join(value.split())


# --- parsing -----------------------------------------------------------------------------------------


def answers_json(answers: dict[str, str | None]) -> str:
    """The `answers` object as the COPY stream carries it: compact JSON, Danish letters as they are."""
    return json.dumps(answers, ensure_ascii=False, separators=(",", ":"))


def open_text(path: Path):
    """Open a delivered CSV as UTF-8 (a BOM is skipped); wrong encodings surface on the first read."""
    return open(path, encoding="utf-8-sig", newline="")


def read_header(fh, path: Path) -> tuple[list[str], str]:
    """Read the header line; return (column names, delimiter). FileRejected if it is not UTF-8."""
    try:
        first = fh.readline()
    except UnicodeDecodeError as exc:
        reason, line = encoding_reason(path)
        raise FileRejected(f"{path.name} is {reason}", row=line) from exc
    if not first.strip():
        raise FileRejected(f"{path.name} is empty: no header line")
    delimiter = ";" if first.count(";") >= first.count(",") else ","
    header = next(csv.reader([first], delimiter=delimiter))
    return [h.strip() for h in header], delimiter


def check_unit_and_wave(ctx: DeliveryContext, line: int, unit: str, wave: str, *, unit_column: str,
                        wave_column: str) -> bool:
    ok = True
    units = ctx.unit_names
    if not unit:
        ctx.reject(row=line, column=unit_column, reason="unit is missing", value=unit)
        ok = False
    elif units and unit not in units:
        ctx.reject(row=line, column=unit_column,
                   reason=f"unknown unit (known: {', '.join(units)})", value=unit)
        ok = False
    if not WAVE_PATTERN.match(wave):
        ctx.reject(row=line, column=wave_column, reason="wave is not YYYY-MM", value=wave)
        ok = False
    elif wave != ctx.period:
        ctx.reject(row=line, column=wave_column,
                   reason=f"wave does not match the delivery's period {ctx.period}", value=wave)
        ok = False
    return ok


def parse(path: Path, ctx: DeliveryContext) -> Iterator[tuple[str, tuple]]:
    items = load_items()
    scales = load_scale_labels()
    with open_text(path) as fh:
        header, delimiter = read_header(fh, path)
        missing = [c for c in (*BASE_COLUMNS, *items) if c not in header]
        if missing:
            raise FileRejected(f"missing columns: {', '.join(missing)}", row=1)
        unknown = [c for c in header if c not in BASE_COLUMNS and c not in items]
        if unknown:
            raise FileRejected(f"unknown columns (not an item in survey_items.csv): {', '.join(unknown)}",
                               row=1)
        duplicated = sorted({c for c in header if header.count(c) > 1})
        if duplicated:
            raise FileRejected(f"duplicated columns: {', '.join(duplicated)}", row=1)
        index = {name: i for i, name in enumerate(header)}
        item_columns = [c for c in header if c in items]
        seen: dict[str, int] = {}
        reader = csv.reader(fh, delimiter=delimiter)
        line = 1
        try:
            for record in reader:
                line = reader.line_num + 1  # the header was read before the reader started
                if not any(v.strip() for v in record):
                    continue  # blank line
                if len(record) != len(header):
                    ctx.reject(row=line, column=None,
                               reason=f"{len(record)} fields, the header has {len(header)}")
                    continue
                respondent = record[index[RESPONDENT_COLUMN]].strip()
                unit = normalise_label(record[index[UNIT_COLUMN]])
                wave = record[index[WAVE_COLUMN]].strip()
                if not respondent:
                    ctx.reject(row=line, column=RESPONDENT_COLUMN, reason="respondent id is missing")
                    continue
                if respondent in seen:
                    ctx.reject(row=line, column=RESPONDENT_COLUMN,
                               reason=f"respondent id repeats line {seen[respondent]}", value=respondent)
                    continue
                seen[respondent] = line
                if not check_unit_and_wave(ctx, line, unit, wave, unit_column=UNIT_COLUMN,
                                           wave_column=WAVE_COLUMN):
                    continue
                answers: dict[str, str | None] = {}
                ok = True
                for code in item_columns:
                    value = normalise_label(record[index[code]])
                    if value and value not in scales[items[code]["scale"]]:
                        ctx.reject(row=line, column=code,
                                   reason=f"unknown answer label for scale {items[code]['scale']}",
                                   value=value)
                        ok = False
                        continue
                    answers[code] = value or None
                if ok:  # a row with a rejected label never reaches raw (its file is quarantined anyway)
                    yield RESPONSE_TABLE, (line, respondent, unit, wave, answers_json(answers))
        except UnicodeDecodeError as exc:
            reason, bad_line = encoding_reason(path)
            raise FileRejected(f"{path.name} is {reason}", row=bad_line) from exc
        except csv.Error as exc:
            raise FileRejected(f"malformed CSV near line {line}: {exc}", row=line) from exc


# --- the set-based path for large files (trivsel.sources.bulk) ----------------------------------------
#
# The same checks and the same wide rows as `parse`, computed in SQL over the file COPYed as delivered. Where
# COPY could read the file differently from Python's csv module, the plan is not made (None) or the loader
# falls back (BulkFallback): the parser stays the reference for every odd file.

#: Every character Python's str.split()/str.strip() treat as whitespace (== chr(c).isspace()).
PY_WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
                 "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
#: A run of them, as a PostgreSQL regular expression (a bracket expression of the literal characters).
PY_WHITESPACE_RUN = "[" + PY_WHITESPACE + "]+"
ROW_TABLE = "bulk_survey_row"
BAD_TABLE = "bulk_survey_bad_label"
#: the lines with a value that is neither blank nor a plain label of its item's scale (usually none)
SUSPICIOUS_TABLE = "bulk_survey_suspicious"


def _quotes_read_alike(path: Path, delimiter: str) -> bool:
    """True when every double quote in the file sits in a well-formed quoted field on one line: then COPY's
    CSV mode and Python's csv module read the same fields (they differ on quotes inside unquoted fields, text
    after a closing quote and quoted line breaks)."""
    from trivsel.sources.bulk import COPY_CHUNK

    with path.open("rb") as fh:
        if not any(b'"' in chunk for chunk in iter(lambda: fh.read(COPY_CHUNK), b"")):
            return True
    d = re.escape(delimiter.encode())
    field = rb'(?:"(?:[^"\r\n]|"")*"|[^"\r\n' + d + rb"]*)"
    line_re = re.compile(rb"^" + field + rb"(?:" + d + field + rb")*(?:\r?\n)?\Z")
    with path.open("rb") as fh:
        for line in fh:
            if b'"' in line and line_re.match(line) is None:
                return False
    return True


def bulk_plan(path: Path, ctx: DeliveryContext):
    """The set-based plan for `path` (see trivsel.sources.bulk), or None when the parser must read it."""
    from psycopg import sql

    from trivsel.sources.bulk import LANDING, BulkFallback, BulkPlan

    items = load_items()
    scales = load_scale_labels()
    try:
        with open_text(path) as fh:
            header, delimiter = read_header(fh, path)
    except FileRejected as exc:
        if isinstance(exc.__cause__, UnicodeDecodeError):
            return None  # the parser words it (and finds where)
        raise
    # Header checks exactly as in `parse`.
    missing = [c for c in (*BASE_COLUMNS, *items) if c not in header]
    if missing:
        raise FileRejected(f"missing columns: {', '.join(missing)}", row=1)
    unknown = [c for c in header if c not in BASE_COLUMNS and c not in items]
    if unknown:
        raise FileRejected(f"unknown columns (not an item in survey_items.csv): {', '.join(unknown)}", row=1)
    duplicated = sorted({c for c in header if header.count(c) > 1})
    if duplicated:
        raise FileRejected(f"duplicated columns: {', '.join(duplicated)}", row=1)

    with path.open("rb") as fh:
        first = fh.readline()
    body = first[:-2] if first.endswith(b"\r\n") else first[:-1] if first.endswith(b"\n") else first
    if b'"' in first or b"\r" in body or not _quotes_read_alike(path, delimiter):
        return None

    cols = [f"c{i}" for i in range(len(header))]
    col = {name: sql.Identifier(cols[i]) for i, name in enumerate(header)}
    item_columns = [c for c in header if c in items]

    def norm(expr):  # " ".join(value.split())
        return sql.SQL("btrim(regexp_replace({}, %(ws_run)s, ' ', 'g'), ' ')").format(expr)

    landing = sql.Identifier(LANDING)
    rows = sql.Identifier("pg_temp", ROW_TABLE)
    bad = sql.Identifier("pg_temp", BAD_TABLE)
    suspicious_rows = sql.Identifier("pg_temp", SUSPICIOUS_TABLE)
    units = ctx.unit_names
    params: dict[str, object] = {
        "ws": PY_WHITESPACE,
        "ws_run": PY_WHITESPACE_RUN,
        "period": ctx.period,
        "units": list(units),
        "check_units": bool(units),
        "unit_reason": f"unknown unit (known: {', '.join(units)})",
        "wave_reason": f"wave does not match the delivery's period {ctx.period}",
        # labels that are their own normal form: a value equal to one needs no normalising
        "plain_labels": sorted({lab for s in scales.values() for lab in s if lab and normalise_label(lab) == lab}),
    }
    scale_param = {}
    for k, name in enumerate(sorted(scales)):
        scale_param[name] = f"scale_{k}"
        params[f"scale_{k}"] = list(scales[name])
        params[f"scale_{k}_plain"] = [lab for lab in scales[name] if lab and normalise_label(lab) == lab]

    def prepare(conn) -> None:
        all_cols = sql.SQL(", ").join(col.values())
        # Python's csv refuses fields over its limit; the parser says how.
        limit = csv.field_size_limit()
        too_long = conn.execute(sql.SQL("select exists (select 1 from {} where greatest({}) > %s)").format(
            landing, sql.SQL(", ").join(sql.SQL("octet_length({})").format(c) for c in col.values())),
            (limit,)).fetchone()[0]
        if too_long:
            raise BulkFallback(f"a field longer than csv.field_size_limit() ({limit})")
        # Rows of nothing but (Python's) whitespace and separators are blank lines to the parser.
        # (a blank respondent first: the cheap test that rules out nearly every row)
        conn.execute(sql.SQL("delete from {} where btrim(coalesce({}, ''), %(ws)s) = '' "
                             "and btrim(concat({}), %(ws)s) = ''").format(landing, col[RESPONDENT_COLUMN], all_cols),
                     {"ws": PY_WHITESPACE})
        wave = sql.SQL("btrim(coalesce({}, ''), %(ws)s)").format(col[WAVE_COLUMN])
        waves = [r[0] for r in conn.execute(sql.SQL("select distinct {} from {}").format(wave, landing),
                                            {"ws": PY_WHITESPACE})]
        valid = [w for w in waves if WAVE_PATTERN.match(w)]  # Python's \d, exactly
        conn.execute(sql.SQL("drop table if exists {}").format(rows))
        conn.execute(sql.SQL(
            """create temp table {rows} on commit drop as
               select source_row, respondent, unit, wave,
                      min(source_row) over (partition by respondent) as first_line,
                      unit = '' or (%(check_units)s and unit <> all(%(units)s::text[])) as unit_bad,
                      not (wave = any(%(valid)s::text[])) as wave_malformed,
                      wave <> %(period)s as wave_other
               from (select source_row,
                            btrim(coalesce({r}, ''), %(ws)s) as respondent,
                            {unit} as unit,
                            btrim(coalesce({w}, ''), %(ws)s) as wave
                     from {landing}) as s""").format(
            rows=rows, landing=landing, r=col[RESPONDENT_COLUMN], w=col[WAVE_COLUMN],
            unit=norm(sql.SQL("coalesce({}, '')").format(col[UNIT_COLUMN]))),
            {**params, "valid": valid})
        conn.execute(sql.SQL("alter table {} add primary key (source_row)").format(rows))
        conn.execute(sql.SQL("analyze {}").format(rows))
        # Unknown labels, all items in one pass over the landing table (the checks below only pick per item):
        # a value equal to one of its scale's normalised labels is fine without normalising.
        # Rows with any value that is neither blank (null) nor a plain label of its scale: usually few. Only
        # these are normalised and checked label by label; every other row's values go to raw as they are.
        conn.execute(sql.SQL("drop table if exists {}").format(suspicious_rows))
        conn.execute(sql.SQL(
            "create temp table {s} (source_row bigint primary key) on commit drop").format(s=suspicious_rows))
        conn.execute(sql.SQL("insert into {s} select source_row from {landing} where {suspicious}").format(
            s=suspicious_rows, landing=landing,
            suspicious=sql.SQL(" or ").join(
                sql.SQL("{c} <> all(%({p}_plain)s::text[])").format(
                    c=col[code], p=sql.SQL(scale_param[items[code]["scale"]])) for code in item_columns)),
            params)
        conn.execute(sql.SQL("analyze {}").format(suspicious_rows))
        conn.execute(sql.SQL("drop table if exists {}").format(bad))
        conn.execute(sql.SQL(
            """create temp table {bad} on commit drop as
               select source_row, k, label
               from (select l.source_row, u.k, u.labels,
                            case when u.raw is null or u.raw = any(u.plain) then '' else {norm} end as label
                     from (select l.* from {landing} as l join {s} using (source_row)) as l
                     cross join lateral (values {values}) as u(k, raw, plain, labels)) as v
               where label <> '' and label <> all(labels)""").format(
            bad=bad, landing=landing, norm=norm(sql.SQL("u.raw")), s=suspicious_rows,
            suspicious=sql.SQL(" or ").join(
                sql.SQL("{c} <> all(%({p}_plain)s::text[])").format(
                    c=col[code], p=sql.SQL(scale_param[items[code]["scale"]])) for code in item_columns),
            values=sql.SQL(", ").join(
                sql.SQL("({k}, l.{c}, %({p}_plain)s::text[], %({p})s::text[])").format(
                    k=sql.Literal(k), c=col[code], p=sql.SQL(scale_param[items[code]["scale"]]))
                for k, code in enumerate(item_columns))),
            params)

    def render(q) -> str:
        return q.as_string(None)

    first_ok = sql.SQL("respondent <> '' and source_row = first_line")
    checks = [
        sql.SQL("select source_row, {c}::text, 'respondent id is missing'::text, null::text from {rows} "
                "where respondent = ''").format(c=sql.Literal(RESPONDENT_COLUMN), rows=rows),
        sql.SQL("select source_row, {c}::text, 'respondent id repeats line ' || first_line, respondent from {rows} "
                "where respondent <> '' and source_row > first_line").format(c=sql.Literal(RESPONDENT_COLUMN),
                                                                             rows=rows),
        sql.SQL("select source_row, {c}::text, case when unit = '' then 'unit is missing' "
                "else %(unit_reason)s::text end, unit from {rows} where {ok} and unit_bad").format(
            c=sql.Literal(UNIT_COLUMN), rows=rows, ok=first_ok),
        sql.SQL("select source_row, {c}::text, case when wave_malformed then 'wave is not YYYY-MM' "
                "else %(wave_reason)s::text end, wave from {rows} where {ok} and (wave_malformed or wave_other)"
                ).format(c=sql.Literal(WAVE_COLUMN), rows=rows, ok=first_ok),
    ]
    for k, code in enumerate(item_columns):
        checks.append(sql.SQL(
            "select b.source_row, {code}::text, {reason}::text, b.label from {bad} as b "
            "where b.k = {k} and exists (select 1 from {rows} as r where r.source_row = b.source_row "
            "and r.respondent <> '' and r.source_row = r.first_line and not r.unit_bad and not r.wave_malformed "
            "and not r.wave_other)"
        ).format(code=sql.Literal(code), reason=sql.Literal(f"unknown answer label for scale {items[code]['scale']}"),
                 bad=bad, k=sql.Literal(k), rows=rows))
    # One raw row per respondent: the item columns become one JSON object. A row that is not suspicious holds
    # only blanks (null) and plain labels, which are their own normal form: its values go in as they are. A
    # suspicious row's values are normalised as the parser does (a blank after normalising is null).
    params["item_codes"] = list(item_columns)
    as_is = sql.SQL(", ").join(sql.SQL("l.{}").format(col[code]) for code in item_columns)
    normalised = sql.SQL(", ").join(
        sql.SQL("case when l.{c} is null then null when l.{c} = any(%(plain_labels)s::text[]) then l.{c} "
                "else nullif({norm}, '') end").format(c=col[code], norm=norm(sql.SQL("l.{}").format(col[code])))
        for code in item_columns)
    insert = sql.SQL(
        "select l.source_row, r.respondent, r.unit, r.wave, "
        "jsonb_object(%(item_codes)s::text[], case when s.source_row is null then array[{as_is}]::text[] "
        "else array[{normalised}]::text[] end) "
        "from {landing} as l join {rows} as r on r.source_row = l.source_row "
        "left join {s} as s on s.source_row = l.source_row").format(
        as_is=as_is, normalised=normalised, landing=landing, rows=rows, s=suspicious_rows)
    return BulkPlan(
        landing_columns=cols,
        copy_options=f"format csv, header true, delimiter '{delimiter}', encoding 'UTF8'",
        checks=[render(c) for c in checks],
        inserts={RESPONSE_TABLE: render(insert)},
        params=params,
        prepare=prepare,
    )
