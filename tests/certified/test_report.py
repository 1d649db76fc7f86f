"""The evaluation report, rendered in Debian's headless chromium: charts drawn, screenshot kept."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("TRIVSEL_TEST_ARTIFACTS", ROOT / "tests" / "artifacts"))
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--hide-scrollbars"]


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        pytest.skip("chromium is not installed (make test-deps installs it)")
    return exe


def run_chromium(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="trivsel-chromium-") as profile:
        return subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=timeout)


def test_bar_chart_draws_a_rect_per_published_value():
    from trivsel.report import bar_chart

    svg = str(bar_chart("t", ["a", "b", "c"], [("2012-05", "#111", [0.5, None, 0.1]),
                                               ("2013-05", "#222", [0.2, 0.3, 0.0])]))
    # 5 bars (the suppressed value is a hatched band, not a bar) + a legend swatch per series and suppressed
    assert svg.count('<rect class="bar"') == 5 and svg.count('<rect class="supp-bar"') == 1
    assert svg.count('class="legend-swatch"') == 3
    assert "<script" not in svg and "http://" not in svg.replace("http://www.w3.org/2000/svg", "")


#: Run inside the rendered report (a copy with this script added; the report itself has none): what the
#: browser laid out, written into the DOM for --dump-dom to return.
MEASURE = """<script>
(function () {
  var out = {charts: 0, labels: 0, overflow: [], axis_titles: 0, supp: 0, supp_bad: 0, zero_bars: 0,
             empty_bars: 0, legend_supp: 0};
  document.querySelectorAll("svg.chart").forEach(function (svg) {
    out.charts++;
    var x = svg.querySelector(".x-title"), y = svg.querySelector(".y-title");
    if (x && y && x.textContent.trim() && y.textContent.trim()) { out.axis_titles++; }
    svg.querySelectorAll("text.cat-label").forEach(function (t) {
      out.labels++;
      var box = parseFloat(t.getAttribute("data-box-width"));
      t.querySelectorAll("tspan").forEach(function (s) {
        var w = s.getComputedTextLength();
        if (w > box + 0.5) { out.overflow.push(s.textContent + " " + w.toFixed(1) + ">" + box); }
      });
    });
    svg.querySelectorAll("rect.supp-bar").forEach(function (r) {
      out.supp++;
      var h = r.getBBox().height;
      if (!(h > 10) || (r.getAttribute("fill") || "").indexOf("url(#hatch") !== 0) { out.supp_bad++; }
    });
    svg.querySelectorAll("rect.bar").forEach(function (r) {
      var v = parseFloat(r.getAttribute("data-value")), h = r.getBBox().height;
      if (v === 0) { out.zero_bars++; }
      if (!(h > 0)) { out.empty_bars++; }
    });
    svg.querySelectorAll("text.legend-label").forEach(function (t) {
      if (t.textContent.indexOf("undertrykt") === 0) { out.legend_supp++; }
    });
  });
  var pre = document.createElement("pre"); pre.id = "trivsel-measure";
  pre.textContent = JSON.stringify(out); document.body.appendChild(pre);
})();
</script>"""


@pytest.mark.e2e
def test_report_renders_in_chromium_with_charts(demo_warehouse, tmp_path):
    from trivsel import cli

    out = tmp_path / "report.html"
    assert cli.main(["report", "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    # self-contained: no scripts, no external resources
    assert "<script" not in text
    assert not re.search(r'(src|href)="https?://', text)
    for label in ("Svarprocent", "Response rate", "Sygefravær", "Sick leave", "ikke leveret", "not delivered",
                  "60 %", "Items without a significant change"):
        assert label in text, label

    dom = run_chromium("--dump-dom", out.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    svgs = re.findall(r"<svg[^>]*class=\"chart[^\"]*\".*?</svg>", dom.stdout, flags=re.S)
    assert len(svgs) >= 2, "at least one significant item: a chart per municipality and one for all"
    # the bars of the answer distributions: one per published share, some and never more (a withheld
    # distribution, all or nothing in docs/disclosure.md, draws hatched bands)
    bars = sum(s.count('<rect class="bar"') for s in svgs if 'class="chart"' in s)
    published = demo_warehouse.execute(
        """select count(*) as n from certified.survey_answer_distribution
           where not is_total and share_of_answers is not null and round in ('baseline', 'followup')
             and item_code in (select item_code from certified.survey_item_change where significant)""").fetchone()["n"]
    assert 1 <= bars <= published
    assert any("Alle kommuner" in s for s in svgs)

    # what the browser laid out (issue 16): axis titles on every chart, no answer label wider than its box,
    # a suppressed value a hatched band (never a 0 bar), a published 0 still drawn
    probe = tmp_path / "measure.html"
    probe.write_text(text.replace("</body>", MEASURE + "</body>"), encoding="utf-8")
    measured = run_chromium("--dump-dom", "--window-size=1280,4000", probe.as_uri())
    assert measured.returncode == 0, measured.stderr[-2000:]
    m = json.loads(html.unescape(re.search(r'<pre id="trivsel-measure">(.*?)</pre>', measured.stdout).group(1)))
    assert m["charts"] == len(svgs) and m["axis_titles"] == m["charts"], m
    assert m["labels"] > 0 and m["overflow"] == [], m["overflow"]
    assert m["supp_bad"] == 0 and m["empty_bars"] == 0, m
    assert (m["supp"] > 0) == (m["legend_supp"] > 0), m
    assert "rotate(-35" not in text and "…</text>" not in text

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(out, ARTIFACTS / "report.html")
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    res = run_chromium(f"--screenshot={shot}", "--window-size=1280,4000", out.as_uri())
    assert res.returncode == 0, res.stderr[-2000:]
    assert shot.exists() and shot.stat().st_size > 20_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.e2e
def test_report_compares_the_configured_rounds_by_default(demo_warehouse, tmp_path):
    """Issue 12 §2: the default comparison is the configured baseline → follow-up round; rounds (or a
    month that is one round) can be passed explicitly; the HTML itself is checked (no browser needed)."""
    from trivsel import report
    from trivsel.config import load_config

    config = load_config()
    base, follow = config.survey_rounds[:2]
    default = report.write_report(tmp_path / "default.html").read_text(encoding="utf-8")
    assert f"<b>{base}</b>" in default and f"<b>{follow}</b>" in default
    # the response-rate table has a row per municipality and round, with the round named
    for m in config.municipalities:
        for rnd in (base, follow):
            assert f"<td>{html.escape(m.name)}</td><td>{rnd}</td>" in default, (m.code, rnd)
    assert len(re.findall(r'<svg[^>]*class="chart"', default)) >= 2  # significant items are charted
    explicit = report.write_report(tmp_path / "explicit.html", baseline=base, followup=follow)
    by_month = report.write_report(tmp_path / "month.html", baseline="2012-05", followup="2013-05")
    strip = re.compile(r"<footer>.*?</footer>", re.S)
    assert strip.sub("", explicit.read_text(encoding="utf-8")) == strip.sub("", default)
    assert strip.sub("", by_month.read_text(encoding="utf-8")) == strip.sub("", default)
    with pytest.raises(RuntimeError, match="unknown survey round 'midterm'"):
        report.write_report(tmp_path / "x.html", baseline="midterm", followup=follow)
    with pytest.raises(RuntimeError, match="2011-05 is no baseline round"):
        report.write_report(tmp_path / "x.html", baseline="2011-05", followup=follow)
