"""Report, export and docs pieces that need no warehouse: charts, wording, spreadsheet formats, the offline
Data Docs rewrite, the docs server's process group, the DAG's labels (issue 16)."""

from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_chart_draws_every_published_share_and_a_hatched_band_for_a_suppressed_one():
    from trivsel.report import bar_chart

    long = "I meget ringe grad (to a very small extent)"
    svg = str(bar_chart("t", [long, "b", "c"], [("2012-05", "#111", [0.5, None, 0.1]),
                                                ("2013-05", "#222", [0.2, 0.3, 0.0])]))
    bars = re.findall(r'<rect class="bar" data-value="([\d.]+)"[^>]*height="([\d.]+)"', svg)
    assert [float(v) for v, _ in bars] == [0.5, 0.2, 0.3, 0.1, 0.0]
    assert all(float(h) > 0 for _, h in bars)  # a published 0 is drawn (a line on the axis)
    supp = re.findall(r'<rect class="supp-bar"[^>]*fill="url\(#hatch-c0\)"', svg)
    assert len(supp) == 1  # the suppressed value: a hatched band, not a bar of height 0
    assert "undertrykt (suppressed)" in svg  # its legend entry
    assert "Svarmulighed (answer)" in svg and "Andel af svarene" in svg  # axis titles
    assert "rotate(-35" not in svg and "…" not in svg  # labels neither rotated nor cut
    text = " ".join(re.findall(r"<tspan[^>]*>([^<]*)</tspan>", svg))
    assert long in text
    assert "<script" not in svg and "http://" not in svg.replace("http://www.w3.org/2000/svg", "")


def test_chart_wraps_long_labels_to_fit_their_group():
    from trivsel.report import charts

    cats = [f"Svarmulighed nummer {i} med en lang tekst (answer {i} with a long text)" for i in range(5)]
    chart = charts.layout("t", cats, [("a", "#111", [0.2] * 5), ("b", "#222", [0.3] * 5)])
    for cat in chart.categories:
        assert len(cat.lines) > 1
        assert " ".join(cat.lines) == cat.text  # nothing cut
        assert all(len(line) * charts.CHAR_W <= cat.box_width for line in cat.lines)
    assert chart.x_title_y > chart.plot_bottom + len(chart.categories[0].lines) * charts.LINE_H


def test_no_chart_without_suppression_has_the_suppressed_legend():
    from trivsel.report import bar_chart

    assert "undertrykt" not in str(bar_chart("t", ["a"], [("x", "#111", [0.4])]))


def test_caveats_in_plain_words_from_the_break_seed():
    from trivsel.report.labels import break_caveat, plain_note

    with (ROOT / "dbt" / "seeds" / "common" / "comparability_breaks.csv").open(encoding="utf-8") as fh:
        seed = {r["break_id"]: r for r in csv.DictReader(fh)}
    bid = "169_near_miss_definition_2013"
    text = str(break_caveat(bid))
    assert seed[bid]["description_da"] in text and seed[bid]["description_en"] in text
    assert bid not in text and text.startswith("Databrud 2013")
    note = str(plain_note(f"{bid}: {bid} (2013); 2012 quarantined"))
    assert bid not in note and "2012 afvist (karantæne)" in note and "(2012 quarantined" not in note.split("(")[0]


def test_significance_level_comes_from_config(monkeypatch):
    from trivsel.report import sections as render

    class Conn:
        def execute(self, *_a, **_k):
            class R:
                def fetchall(self):
                    return []
            return R()

    html = str(render.section_items(Conn(), {}, "baseline", "followup", level=0.01)[0])
    assert "p ≤ 0,01" in html and "p ≤ 0.01" in html and "0,05" not in html


def test_csv_for_danish_excel(tmp_path):
    from decimal import Decimal

    from trivsel.export import write_csv

    path = write_csv(tmp_path / "t.csv", ["a", "b", "c"], [(1, 3.857142857142857, "=x"), (None, Decimal("-0.5"), "y")],
                     ";", decimal=",")
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    lines = raw.decode("utf-8-sig").split("\r\n")
    assert lines[1] == "1;3,857142857142857;'=x" and lines[2] == ";-0,5;y"
    with pytest.raises(ValueError):
        write_csv(tmp_path / "x.csv", ["a"], [(1.5,)], ",", decimal=",")


def test_xlsx_has_danish_labels_formats_panes_filter_and_widths(tmp_path):
    from openpyxl import load_workbook

    from trivsel.export import write_xlsx

    rows = [("169", 0.0123, 0.61, 12, 3.857142857142857, "=cmd")]
    cols = ["municipality_code", "p_value", "response_rate", "n_respondents", "mean_diff", "note"]
    path = write_xlsx(tmp_path / "t.xlsx", {"survey_item_change": (cols, rows)})
    ws = load_workbook(path)["survey_item_change"]
    assert [c.value for c in ws[1]][:3] == ["Kommunekode", "p-værdi", "Svarprocent"]
    assert [c.value for c in ws[2]] == cols
    assert ws.freeze_panes == "A3" and ws.auto_filter.ref == "A2:F3"
    fmts = {cols[i]: ws.cell(row=3, column=i + 1).number_format for i in range(len(cols))}
    assert fmts["p_value"] == "0.000" and fmts["response_rate"] == "0.0%" and fmts["mean_diff"] == "0.00"
    assert fmts["n_respondents"] == "#,##0"
    assert ws.cell(row=3, column=6).value == "'=cmd"  # formula neutralised
    assert all(ws.column_dimensions[letter].width >= 8 for letter in "ABCDEF")
    assert ws.column_dimensions["A"].width >= len("municipality_code")


def test_data_dictionary_lists_code_lists_and_where_cells_are_suppressed():
    from trivsel.export_format import enrich_dictionary

    dcols = ["table_name", "column_name", "ordinal", "description", "suppressed"]
    drows = [("t", "metric", 1, "pct_whole_group", False), ("t", "value", 2, "v", False),
             ("t", "unit_name", 3, "u", False)]
    tables = {"t": (["metric", "value", "unit_name", "suppressed"],
                    [("pct_whole_group", 1.0, "Fløj A", False), ("days_per_employee", None, "Fløj B", True),
                     ("pct_per_employee", 2.0, "Fløj A", False)])}
    cols, rows = enrich_dictionary((dcols, drows), tables)
    by = {r[1]: dict(zip(cols, r, strict=True)) for r in rows}
    codes = by["metric"]["code_list"]
    for code in ("pct_whole_group", "pct_per_employee", "days_per_employee"):
        assert code in codes
    assert "Sygedage pr. medarbejder" in codes  # Danish label of each code
    assert by["value"]["suppressed"] is True and by["value"]["suppressed_rows"] == 1
    assert by["metric"]["suppressed"] is False
    assert by["unit_name"]["code_list"] is None  # free names are no code list


def test_datadocs_rewrite_points_every_cdn_reference_at_local_files(tmp_path):
    from trivsel import datadocs_offline

    sources = datadocs_offline.vendor_sources()
    assert {"jquery", "bootstrap_css", "bootstrap_js"} <= set(sources), sources
    page = tmp_path / "validations" / "x" / "p.html"
    page.parent.mkdir(parents=True)
    page.write_text(textwrap.dedent("""\
        <html><head>
        <link rel="stylesheet" href="https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css"/>
        <link rel="stylesheet" href="https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css">
        <script src="https://cdn.jsdelivr.net/npm/vega@5"></script>
        <script src="https://code.jquery.com/jquery-3.7.1.min.js"></script>
        <script src="https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js" crossorigin="anonymous"></script>
        </head><body></body></html>"""), encoding="utf-8")
    counts = datadocs_offline.localise(tmp_path)
    text = page.read_text(encoding="utf-8")
    assert "https://" not in text and counts["replaced"] == 3
    for ref in re.findall(r'(?:src|href)="([^"]+)"', text):
        assert (page.parent / ref).resolve().is_file(), ref
    assert text.index("jquery") < text.index("offline.js") < text.index("bootstrap.bundle")
    assert datadocs_offline.localise(tmp_path)["replaced"] == 0  # idempotent


def test_a_stopped_docs_server_leaves_no_child_serving(tmp_path):
    """`trivsel dbt docs serve` runs dbt through trivsel.child: SIGTERM to trivsel stops dbt and whatever
    dbt started (here a stand-in server that starts a grandchild)."""
    pids = tmp_path / "pids"
    server = ("import os, subprocess, sys, time\n"
              "g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'])\n"
              f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{g.pid}}')\n"
              "time.sleep(300)\n")
    runner = ("import sys; from trivsel import child\n"
              f"sys.exit(child.run([sys.executable, '-c', {server!r}]))\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT / "plugins"))
    proc = subprocess.Popen([sys.executable, "-c", runner], env=env)
    deadline = time.time() + 30
    while not (pids.exists() and pids.read_text().strip()) and time.time() < deadline:
        time.sleep(0.1)
    child_pid, grandchild = map(int, pids.read_text().split())
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) != 0
    time.sleep(0.5)
    for pid in (child_pid, grandchild):
        try:
            os.kill(pid, 0)
            alive = Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
        except ProcessLookupError:
            alive = False
        assert not alive, f"pid {pid} still running"


def test_dag_labels_read_as_words():
    from trivsel.dag_labels import TASKS, dbt_label, doc_md

    text = doc_md()
    for needle in ("Trigger", "backfill", "When a municipality fails", "quarantine.delivery_issue"):
        assert needle in text, needle
    node = {"resource_type": "test", "test_metadata": {"name": "relationships",
                                                        "kwargs": {"column_name": "item_code"}},
            "attached_node": "model.trivsel.fct_survey_answer",
            "refs": [{"name": "dim_survey_item"}, {"name": "fct_survey_answer"}]}
    assert dbt_label(node) == "test relation: fct_survey_answer.item_code → dim_survey_item"
    assert dbt_label({"resource_type": "model", "name": "dim_unit"}) == "dim_unit (model)"
    assert all("(" in v for v in TASKS.values())


@pytest.mark.parametrize("command", ["report", "export"])
def test_a_stopped_warehouse_is_one_clear_line_not_a_traceback(command, tmp_path, monkeypatch, capsys):
    from trivsel import cli, warehouse

    out = tmp_path / ("r.html" if command == "report" else "x")
    # 1. the embedded warehouse is stopped
    monkeypatch.setattr(warehouse, "is_external", lambda: False)
    monkeypatch.setattr(warehouse, "status", lambda: "stopped")
    assert cli.main([command, "--out", str(out)]) == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "trivsel warehouse start" in err and "stopped" in err
    # 2. an external warehouse that does not answer
    monkeypatch.setattr(warehouse, "is_external", lambda: True)
    monkeypatch.setenv("WAREHOUSE_URL", "postgresql://trivsel:not-a-secret@127.0.0.1:1/trivsel")
    monkeypatch.setenv("TRIVSEL_EVALUATOR_URL", "postgresql://evaluator:not-a-secret@127.0.0.1:1/trivsel")
    assert cli.main([command, "--out", str(out)]) == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "trivsel warehouse start" in err and "not-a-secret" not in err
    assert not out.exists() or not any(out.iterdir()) if out.suffix != ".html" else not out.exists()
