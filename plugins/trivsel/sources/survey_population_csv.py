"""Scheme `survey_population_csv`: the target population per unit of a survey wave (see
docs/sources/survey_respondent_csv.md, which documents both files of a CSV survey delivery).

UTF-8 (BOM optional), `;`-separated, columns `enhed`, `maaling` (YYYY-MM), `maalgruppe` (head count of the
staff invited to answer). One row per unit.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from trivsel.sources._text import encoding_reason
from trivsel.sources.base import Column, DeliveryContext, FileRejected, Partner, RawTable, Scheme
from trivsel.sources.survey_respondent_csv import check_unit_and_wave, normalise_label, open_text, read_header

UNIT_COLUMN = "enhed"
WAVE_COLUMN = "maaling"
POPULATION_COLUMN = "maalgruppe"

SCHEME = Scheme(
    name="survey_population_csv",
    source="survey",
    suffixes=(".csv",),
    description="target population per unit of a survey wave, companion of survey_respondent_csv",
    tables=(
        RawTable(
            "survey_population_csv",
            (
                Column("source_row", "integer", "line in the file (header = 1)"),
                Column("unit_name", "text", "column enhed: the unit as delivered"),
                Column("wave", "text", "column maaling: the wave, YYYY-MM"),
                Column("target_population", "integer", "column maalgruppe: staff invited to answer"),
            ),
            description="one row per unit and wave",
        ),
    ),
    # A population is the denominator of a response rate: without the wave's answers (survey_respondent_csv,
    # same municipality and period) it has nothing to divide, so it waits for them (trivsel.consistency).
    # Answers without a population are fine: the wave shows respondents and no rate.
    requires=(Partner(
        scheme="survey_respondent_csv",
        what="waves (maaling) with no answers",
        orphans_sql="""
            select population.source_row
              from raw.survey_population_csv as population
             where population.delivery_id = %(delivery_id)s
               and not exists (
                   select 1
                     from raw.survey_response_csv as answer
                     join audit.delivery as d on d.delivery_id = answer.delivery_id
                    where d.status = 'loaded' and d.scheme = 'survey_respondent_csv'
                      and d.municipality_code = %(municipality_code)s and d.period = %(period)s
                      and answer.wave = population.wave)
             order by population.source_row""",
    ),),
)


def parse(path: Path, ctx: DeliveryContext) -> Iterator[tuple[str, tuple]]:
    with open_text(path) as fh:
        header, delimiter = read_header(fh, path)
        required = (UNIT_COLUMN, WAVE_COLUMN, POPULATION_COLUMN)
        missing = [c for c in required if c not in header]
        if missing:
            raise FileRejected(f"missing columns: {', '.join(missing)}", row=1)
        index = {name: i for i, name in enumerate(header)}
        reader = csv.reader(fh, delimiter=delimiter)
        seen: dict[str, int] = {}
        line = 1
        try:
            for record in reader:
                line = reader.line_num + 1
                if not any(v.strip() for v in record):
                    continue
                if len(record) != len(header):
                    ctx.reject(row=line, column=None,
                               reason=f"{len(record)} fields, the header has {len(header)}")
                    continue
                unit = normalise_label(record[index[UNIT_COLUMN]])
                wave = record[index[WAVE_COLUMN]].strip()
                raw_population = record[index[POPULATION_COLUMN]].strip()
                if not check_unit_and_wave(ctx, line, unit, wave, unit_column=UNIT_COLUMN,
                                           wave_column=WAVE_COLUMN):
                    continue
                if unit in seen:
                    ctx.reject(row=line, column=UNIT_COLUMN, reason=f"unit repeats line {seen[unit]}",
                               value=unit)
                    continue
                seen[unit] = line
                if not raw_population.isdigit():
                    ctx.reject(row=line, column=POPULATION_COLUMN,
                               reason="target population is not a whole number", value=raw_population)
                    continue
                yield "survey_population_csv", (line, unit, wave, int(raw_population))
        except UnicodeDecodeError as exc:
            reason, bad_line = encoding_reason(path)
            raise FileRejected(f"{path.name} is {reason}", row=bad_line) from exc
        except csv.Error as exc:
            raise FileRejected(f"malformed CSV near line {line}: {exc}", row=line) from exc
