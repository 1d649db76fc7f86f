"""Shared helpers of the survey tests: read the generated sample files back with the real parsers and score
them with the seeds (independently of the generator's own functions)."""

from __future__ import annotations

import collections
import csv
import json
from pathlib import Path

import yaml

from trivsel import settings
from trivsel.sources import get_scheme
from trivsel.sources.base import DeliveryContext
from trivsel.sources.survey_respondent_csv import survey_seed_dir

#: The report's figures (resonans-figures.md §3), written out here on purpose: not imported from the generator.
REPORT_COUNTS = {
    ("607", "2012-05"): (31, 42), ("607", "2013-05"): (34, 42),
    ("169", "2012-05"): (28, 40), ("169", "2013-05"): (32, 40),
    ("461", "2012-05"): (32, 40), ("461", "2013-05"): (11, 40),
    ("ALL", "2012-05"): (91, 122), ("ALL", "2013-05"): (77, 122),
}
REPORT_RATES_PCT = {
    ("607", "2012-05"): 74, ("607", "2013-05"): 81, ("169", "2012-05"): 70, ("169", "2013-05"): 80,
    ("461", "2012-05"): 80, ("461", "2013-05"): 28, ("ALL", "2012-05"): 75, ("ALL", "2013-05"): 63,
}
REPORT_SIGNIFICANT = {
    "2.4.1": {"461", "ALL"}, "2.4.2": {"461", "ALL"}, "3.1.1": {"461", "607"}, "3.1.2": {"461", "607"},
    "3.2.1": {"461", "ALL"}, "3.4.1": {"607", "ALL"}, "3.4.2": {"607", "461"}, "4.1.1": {"ALL"},
    "5.1.1": {"ALL"}, "5.1.2": {"ALL"}, "5.2.1": {"607", "461"}, "5.2.2": {"607", "461"},
}
EXPOSURE_ITEMS = ("7.1.1", "7.2.1", "7.3.1", "7.4.1")  # sexual harassment, threats, violence, bullying


def municipalities() -> dict[str, dict]:
    with open(settings.config_path(), encoding="utf-8") as fh:
        return {m["code"]: m for m in yaml.safe_load(fh)["municipalities"]}


def context(code: str, period: str, name: str = "file") -> DeliveryContext:
    return DeliveryContext(municipality_code=code, period=period, file_name=name,
                           municipality=municipalities()[code])


def seed(name: str) -> list[dict[str, str]]:
    with open(survey_seed_dir() / name, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def scheme_for(path: Path) -> str:
    if path.suffix == ".xlsx":
        return "survey_workbook_xlsx"
    return "survey_population_csv" if path.name.startswith("maalgruppe_") else "survey_respondent_csv"


def parse_inbox(inbox: Path) -> dict[str, list[tuple]]:
    """raw table → rows (municipality, period, *parsed row) for every sample file; asserts no row issues."""
    rows: dict[str, list[tuple]] = collections.defaultdict(list)
    for path in sorted(inbox.glob("*/survey/*/*")):
        code, _, period, _ = path.parts[-4:]
        ctx = context(code, period, path.name)
        for table, row in get_scheme(scheme_for(path)).parse(path, ctx):
            rows[table].append((code, period, *row))
        assert not ctx.issues, ctx.issues
    return rows


def ordinal_answers(rows: dict[str, list[tuple]]):
    """(municipality, wave, item_code) → list of ordinal answers (non-answers left out), scored from the seeds;
    and (municipality, wave) → set of respondents; and the count of non-answers."""
    items = {r["item_code"]: r for r in seed("survey_items.csv")}
    labels = {(r["scale"], r["label_da"]): r for r in seed("survey_scale_labels.csv")}
    codes = {(r["scale"], r["direction"], int(r["workbook_code"])): r["label_da"]
             for r in seed("survey_workbook_codes.csv")}
    by_text = {" ".join(r["text_da"].split()).lower(): code for code, r in items.items()}
    answers = collections.defaultdict(list)
    respondents = collections.defaultdict(set)
    non_answers = collections.Counter()
    for code, _period, _row, respondent, _unit, wave, answers_json in rows["survey_response_csv"]:
        respondents[(code, wave)].add(respondent)
        for item_code, label in json.loads(answers_json).items():  # the unnest staging does
            _score(answers, non_answers, items, labels, code, wave, item_code, label)
    for code, _period, _row, respondent, _unit, wave, header, _col, _value, answer_code in rows["survey_answer_xlsx"]:
        respondents[(code, wave)].add(respondent)
        item_code = by_text[" ".join(header.split()).lower()]
        item = items[item_code]
        label = None if answer_code is None else codes[(item["scale"], item["direction"], answer_code)]
        _score(answers, non_answers, items, labels, code, wave, item_code, label)
    return answers, respondents, non_answers


def _score(answers, non_answers, items, labels, code, wave, item_code, label):
    item = items[item_code]
    if label is None:
        non_answers[(code, "blank")] += 1
        return
    row = labels[(item["scale"], label)]
    if row["is_non_answer"] == "true":
        non_answers[(code, "ved ikke")] += 1
        return
    k = int(row["scale_points"])
    intensity = int(row["intensity"])
    answers[(code, wave, item_code)].append(intensity if item["direction"] == "positive" else k + 1 - intensity)
