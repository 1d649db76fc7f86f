"""`trivsel export`: certified tables + data dictionary, spreadsheet-safe."""

from __future__ import annotations

import csv
import json

import pytest

from trivsel.export import neutralise


@pytest.mark.parametrize("value", ["=HYPERLINK(\"http://x\")", "+1+2", "-2+3", "@SUM(A1)", "\t=1", "\r=1"])
def test_formula_cells_are_neutralised(value):
    assert neutralise(value) == "'" + value


@pytest.mark.parametrize("value", ["Odense", "", None, -3, 2.5, "1-2"])
def test_other_cells_are_kept(value):
    assert neutralise(value) == value


@pytest.mark.e2e
def test_export_csv_and_xlsx(demo_warehouse, tmp_path):
    from openpyxl import load_workbook

    from trivsel import cli

    assert cli.main(["export", "--out", str(tmp_path / "csv")]) == 0
    files = {p.name for p in (tmp_path / "csv").iterdir()}
    assert {"survey_item_change.csv", "delivery_coverage.csv", "data_dictionary.csv", "publication.json"} <= files
    meta = json.loads((tmp_path / "csv" / "publication.json").read_text())
    assert meta["read_as_role"] == "evaluator"
    with (tmp_path / "csv" / "data_dictionary.csv").open(encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["table_name"] for r in rows} >= {"survey_item_change", "incident_rate_change"}
    assert all(r["description"] for r in rows)
    for name in files - {"publication.json"}:
        with (tmp_path / "csv" / name).open(encoding="utf-8-sig") as fh:
            for row in csv.reader(fh):
                for cell in row:
                    assert not cell.startswith(("=", "+", "@")), (name, cell)
                    assert not (cell.startswith("-") and not _number(cell)), (name, cell)

    assert cli.main(["export", "--out", str(tmp_path / "x"), "--format", "xlsx", "--period", "2013-05"]) == 0
    wb = load_workbook(next((tmp_path / "x").glob("*.xlsx")))
    assert "survey_response_rate" in wb.sheetnames and "data_dictionary" in wb.sheetnames
    # row 1: Danish labels, row 2: column names (export_format), then the data
    waves = {r[1] for r in wb["survey_response_rate"].iter_rows(min_row=3, values_only=True)}
    assert waves == {"2013-05"}

    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    assert cli.main(["export", "--out", str(tmp_path / "pq"), "--format", "parquet"]) == 0
    df = pd.read_parquet(tmp_path / "pq" / "survey_item_change.parquet")
    assert len(df) > 0 and "suppressed" in df.columns


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
