"""Scheme `survey_respondent_csv`: one row per respondent, one column per NFA item code (see
docs/sources/survey_respondent_csv.md).

The file is UTF-8 (with or without a byte-order mark), `;`-separated (`,` is accepted too), with the
columns `respondent`, `enhed` (unit), `maaling` (wave, `YYYY-MM`) and one column per item code of
`dbt/seeds/survey/survey_items.csv`. Answers are the questionnaire's Danish labels; which labels exist is
data (`dbt/seeds/survey/survey_scale_labels.csv`), read here only to reject unknown labels early. The
parser keeps the label as delivered; scoring is dbt's job.

Raw output is long: one row of `raw.survey_answer_csv` per respondent × item. The target population comes
in a separate file of scheme `survey_population_csv`.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from trivsel.sources.base import Column, DeliveryContext, FileRejected, RawTable, Scheme

RESPONDENT_COLUMN = "respondent"
UNIT_COLUMN = "enhed"
WAVE_COLUMN = "maaling"
BASE_COLUMNS = (RESPONDENT_COLUMN, UNIT_COLUMN, WAVE_COLUMN)
WAVE_PATTERN = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")

SCHEME = Scheme(
    name="survey_respondent_csv",
    source="survey",
    suffixes=(".csv",),
    description="NFA short questionnaire, one row per respondent, one column per item code, Danish labels",
    tables=(
        RawTable(
            "survey_answer_csv",
            (
                Column("source_row", "integer", "line in the file (header = 1)"),
                Column("respondent_id", "text", "the respondent's id as delivered (anonymous, per wave)"),
                Column("unit_name", "text", "column enhed: the unit as delivered"),
                Column("wave", "text", "column maaling: the wave, YYYY-MM"),
                Column("item_code", "text", "the NFA item code (the column header)"),
                Column("answer_label", "text", "the answer label as delivered; null when blank"),
            ),
            description="one row per respondent × item, labels as delivered",
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


def open_text(path: Path):
    """Open a delivered CSV as UTF-8 (a BOM is skipped); wrong encodings surface on the first read."""
    return open(path, encoding="utf-8-sig", newline="")


def read_header(fh, path: Path) -> tuple[list[str], str]:
    """Read the header line; return (column names, delimiter). FileRejected if it is not UTF-8."""
    try:
        first = fh.readline()
    except UnicodeDecodeError as exc:
        raise FileRejected(f"{path.name} is not UTF-8 ({exc.reason} at byte {exc.start})") from exc
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
                for code in item_columns:
                    value = normalise_label(record[index[code]])
                    if value and value not in scales[items[code]["scale"]]:
                        ctx.reject(row=line, column=code,
                                   reason=f"unknown answer label for scale {items[code]['scale']}",
                                   value=value)
                        continue
                    yield "survey_answer_csv", (line, respondent, unit, wave, code, value or None)
        except UnicodeDecodeError as exc:
            raise FileRejected(f"{path.name} is not UTF-8 ({exc.reason}) after line {line}",
                               row=line + 1) from exc
        except csv.Error as exc:
            raise FileRejected(f"malformed CSV near line {line}: {exc}", row=line) from exc
