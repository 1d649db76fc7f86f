"""docs/sources/ is what a municipality follows: every header text, code and label it must match is
copied there from the seeds. These tests keep the pages from drifting away from the seeds (a new seed row
without its line in the page fails here), and check that every page says where its data go and which
rules apply. No database.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from doc_tables import table_rows

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "sources"
SEEDS = ROOT / "dbt" / "seeds"
PAGES = sorted(DOCS.glob("*.md"))


def _seed(relative: str) -> list[dict[str, str]]:
    with (SEEDS / relative).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _page(name: str) -> str:
    return (DOCS / f"{name}.md").read_text(encoding="utf-8")


def test_every_scheme_module_has_a_page_and_every_page_a_scheme():
    from trivsel.sources import all_schemes

    assert {p.stem for p in PAGES} == set(all_schemes())


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_page_says_where_its_data_go_what_to_send_what_to_match_and_the_rules(page):
    text = page.read_text(encoding="utf-8")
    assert "## For a municipality: what to send, what it must match, where it goes" in text
    if page.stem != "survey_population_csv":  # a companion page: points at its answers page's rules
        for heading in ("### Where the data go", "### What to send for each figure", "### Rules applied to"):
            assert heading in text, f"{page.name} lacks '{heading}'"
        assert re.search(r"### What the (file|files|workbook) must match", text), page.name
        # the warehouse tables it names exist as dbt models
        models = {p.stem for p in (ROOT / "dbt" / "models").rglob("*.sql")}
        where = text.split("### Where the data go", 1)[1].split("###", 1)[0]
        named = set(re.findall(r"`(?:marts|reporting|person)\.([a-z_]+)`", where))
        assert named, f"{page.name} names no warehouse table"
        missing = {t for t in named if t not in models and t not in _stats_tables()}
        assert not missing, f"{page.name} names tables that no model or statistic builds: {missing}"
    else:
        assert "survey_respondent_csv.md#rules-applied-to-survey-answers" in text


def _stats_tables() -> set[str]:
    tables = set()
    for f in (ROOT / "plugins" / "trivsel" / "stats").glob("*.py"):
        tables |= set(re.findall(r'TABLE = "reporting\.([a-z_]+)"', f.read_text()))
    return tables


def test_survey_workbook_page_lists_every_item_header_of_the_seed():
    rows = {r[0]: r for r in table_rows(_page("survey_workbook_xlsx")) if re.fullmatch(r"\d\.\d\.\d", r[0])}
    for item in _seed("survey/survey_items.csv"):
        assert item["item_code"] in rows, f"item {item['item_code']} missing from survey_workbook_xlsx.md"
        code, header, scale, direction = rows[item["item_code"]][:4]
        assert (header, scale, direction) == (item["text_da"], item["scale"], item["direction"]), code


def test_survey_workbook_page_lists_every_answer_code_of_the_seed():
    table = table_rows(_page("survey_workbook_xlsx"))
    head = next(r for r in table if r[:2] == ["scale", "direction"])
    codes = {int(c.removeprefix("code ")): i for i, c in enumerate(head) if c.startswith("code ")}
    lines = {(r[0], r[1]): r for r in table if len(r) == len(head) and r[1] in ("positive", "negative")}
    for row in _seed("survey/survey_workbook_codes.csv"):
        key = (row["scale"], row["direction"])
        assert key in lines, f"no code line for {key} in survey_workbook_xlsx.md"
        assert int(row["workbook_code"]) in codes, f"no column for code {row['workbook_code']}"
        assert lines[key][codes[int(row["workbook_code"])]] == row["label_da"], (key, row["workbook_code"])


def test_survey_respondent_page_lists_every_item_and_every_scale_label():
    text = _page("survey_respondent_csv")
    rows = {r[0]: r for r in table_rows(text) if re.fullmatch(r"\d\.\d\.\d", r[0])}
    for item in _seed("survey/survey_items.csv"):
        assert item["item_code"] in rows, item["item_code"]
        assert rows[item["item_code"]][2:4] == [item["scale"], item["direction"]], item["item_code"]
        assert item["text_da"] in rows[item["item_code"]][1]
    scales = {r[0]: r[1] for r in table_rows(text) if len(r) == 2}
    for label in _seed("survey/survey_scale_labels.csv"):
        if label["is_non_answer"] == "true":
            assert label["label_da"] in text
            continue
        assert label["scale"] in scales, f"scale {label['scale']} not listed"
        assert label["label_da"] in [s.strip() for s in scales[label["scale"]].split("·")], label


def test_payroll_page_lists_every_absence_code():
    rows = {r[0]: r for r in table_rows(_page("hr_payroll_csv"))}
    for code in _seed("absence/absence_codes.csv"):
        if code["scheme"] != "hr_payroll_csv":
            continue
        assert code["absence_code"] in rows, code["absence_code"]
        counts = rows[code["absence_code"]][2]
        assert counts == ("yes" if code["counts_as_sick_leave"] == "true" else "no"), code["absence_code"]
        assert code["label_da"] in rows[code["absence_code"]][1]


def test_summary_page_lists_every_metric_label_and_markers_are_on_the_absence_pages():
    text = _page("hr_unit_year_summary")
    for metric in _seed("absence/absence_metrics.csv"):
        assert f"`{metric['summary_label_da']}`" in text, metric["metric"]
    for page in ("hr_unit_workbook", "hr_unit_year_summary", "hr_payroll_csv"):
        for marker in _seed("absence/absence_value_markers.csv"):
            assert f"`{marker['marker']}`" in _page(page), (page, marker["marker"])


def test_incident_pages_list_every_mapped_label():
    for row in _seed("incidents/incident_label_map.csv"):
        assert f"`{row['label']}`" in _page(row["scheme"]), (row["scheme"], row["label"])
    for row in _seed("incidents/incident_with_absence.csv"):
        assert f"`{row['label']}`" in _page(row["scheme"]), (row["scheme"], row["label"])


def test_pages_state_the_rules_of_averages_rounds_rate_test_and_low_counts():
    for page in ("hr_payroll_csv", "hr_unit_workbook", "hr_unit_year_summary"):
        text = _page(page)
        assert "unweighted mean" in text and "excluded" in text and "baseline_years" in text, page
    for page in ("survey_respondent_csv", "survey_workbook_xlsx"):
        text = _page(page)
        assert "settings.survey_rounds" in text and "sources.survey.rounds" in text, page
        assert "Welch" in text and "minimum_response_rate" in text, page
    for page in ("ohs_registry_export", "ohs_case_review", "reported_accidents_by_unit",
                 "internal_incident_register", "incident_yearly_aggregate", "use_of_force_yearly"):
        text = _page(page)
        assert "exact conditional Poisson rate test" in text and "test_poisson_2indep" in text, page
        assert "low_count" in text and "small_cell_threshold" in text, page
    stats = (ROOT / "plugins" / "trivsel" / "stats" / "incidents.py").read_text()
    assert "test_poisson_2indep" in stats and "confint_poisson_2indep" in stats, \
        "the incident pages describe a test incidents.py no longer uses"


def test_config_header_names_every_seed_file_onboarding_may_touch_and_the_round_keys():
    header = []
    for line in (ROOT / "config" / "municipalities.yml").read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        header.append(line)
    text = "\n".join(header)
    for seed in ("common/unit_aliases.csv", "common/comparability_breaks.csv", "absence/absence_codes.csv",
                 "absence/absence_value_markers.csv", "incidents/incident_label_map.csv"):
        assert f"dbt/seeds/{seed}" in text, seed
    assert "incident_with_absence.csv" in text
    assert "settings.survey_rounds" in text and "sources.survey.rounds" in text
