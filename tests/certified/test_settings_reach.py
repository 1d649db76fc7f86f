"""Issue 16: every setting of config/municipalities.yml reaches the statistics, the dbt models and the report.

On the session's demo warehouse (no new DAG run): the statistics' own columns say which level they used,
the certified tables carry the power columns under the disclosure rule, and a changed settings.baseline_years
/ followup_years reaches the dbt models through raw.config_setting (`dbt show`: compiled and run as a query,
nothing materialised, so the session's tables stay as they are). The unit-level checks of each setting are in
tests/survey/test_stats_settings.py and the stats tests; settings.minimum_response_rate reaching dbt in
tests/survey/test_survey_response_units.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from trivsel import settings, warehouse
from trivsel.config import load_config


def test_statistics_record_the_configured_level(demo_warehouse):
    level = load_config().settings["significance_level"]
    for table in ("reporting.survey_item_change", "reporting.incident_rate_change",
                  "reporting.absence_employee_test", "certified.survey_item_change"):
        rows = demo_warehouse.execute(f"select distinct significance_level as a from {table}").fetchall()
        assert [r["a"] for r in rows] == [level], table
    bad = demo_warehouse.execute("""select count(*) as n from reporting.survey_item_change
        where significant is distinct from (case when p_value is not null then p_value <= significance_level end)
    """).fetchone()["n"]
    assert bad == 0


def test_power_columns_are_published_under_the_disclosure_rule(demo_warehouse):
    rows = demo_warehouse.execute("""select c.mdd, c.underpowered, c.mean_diff, c.suppressed,
               r.mdd as true_mdd, r.underpowered as true_underpowered, r.n_baseline, r.n_followup
        from certified.survey_item_change as c
        join reporting.survey_item_change as r using (municipality_code, item_code, baseline_round, followup_round)
    """).fetchall()
    assert rows
    for r in rows:
        # mdd stands for the spread: only where the pair's mean difference (and g) is published
        assert (r["mdd"] is None) or (r["mean_diff"] is not None and r["mdd"] == pytest.approx(r["true_mdd"]))
        if r["mean_diff"] is not None and r["true_mdd"] is not None:
            assert r["mdd"] == pytest.approx(r["true_mdd"])
        assert r["underpowered"] is (None if r["suppressed"] else r["true_underpowered"])
    published = [r for r in rows if r["mdd"] is not None]
    assert published and all(r["mdd"] > 0 for r in published)
    # the sample's small units give both: comparisons too small to detect a medium effect, and larger ones
    flags = {r["underpowered"] for r in rows if not r["suppressed"]}
    assert flags == {True, False}


def test_incident_rate_ratio_ci_covers_the_ratio(demo_warehouse):
    rows = demo_warehouse.execute("""select rate_ratio, rate_ratio_ci_low, rate_ratio_ci_high, p_value, significant
        from certified.incident_rate_change where status = 'tested' and rate_ratio is not null""").fetchall()
    assert rows
    for r in rows:
        assert r["rate_ratio_ci_low"] <= r["rate_ratio"]
        assert r["rate_ratio_ci_high"] is None or r["rate_ratio"] <= r["rate_ratio_ci_high"]
        # a (1 − α) interval that excludes 1 goes with a significant test, nearly always (MOVER vs exact)
        excludes_one = r["rate_ratio_ci_low"] > 1 or (r["rate_ratio_ci_high"] or float("inf")) < 1
        if excludes_one and r["p_value"] > 0.2:
            pytest.fail(f"the interval excludes 1 but p = {r['p_value']}: {r}")


def _dbt_show(model: str, tmp: Path) -> list[dict]:
    env = dict(os.environ, **warehouse.dbt_env(warehouse.TRANSFORMER))
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    dbt = str(Path(sys.executable).with_name("dbt"))
    res = subprocess.run(
        [dbt, "--quiet", "show", "--select", model, "--limit", "100000", "--output", "json",
         "--project-dir", str(settings.dbt_dir()), "--profiles-dir", str(settings.dbt_dir()),
         "--target-path", str(tmp / "target"), "--log-path", str(tmp / "logs")],
        env=env, capture_output=True, text=True, cwd=str(settings.dbt_dir()), timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    return json.loads(res.stdout[res.stdout.index("{"):])["show"]


def test_baseline_and_followup_years_reach_the_dbt_models(demo_warehouse, tmp_path):
    shipped = {r["setting_name"]: r["setting_value"] for r in demo_warehouse.execute(
        "select * from raw.config_setting where setting_name in ('baseline_years', 'followup_years')")}
    assert shipped == {"baseline_years": "2010,2011,2012", "followup_years": "2013"}
    try:
        demo_warehouse.execute("update raw.config_setting set setting_value = '2011,2012'"
                               " where setting_name = 'baseline_years'")
        demo_warehouse.execute("update raw.config_setting set setting_value = '2016'"
                               " where setting_name = 'followup_years'")
        changes = _dbt_show("absence_change", tmp_path)
        years = _dbt_show("int_incident_spine", tmp_path)
    finally:
        for name, value in shipped.items():
            demo_warehouse.execute("update raw.config_setting set setting_value = %s where setting_name = %s",
                                   (value, name))
    before = demo_warehouse.execute("select distinct followup_year, baseline_years from reporting.absence_change"
                                    " where baseline_years <> 'none'").fetchall()
    assert {(r["followup_year"], r["baseline_years"]) for r in before} == {(2013, "2010, 2011, 2012")}
    assert changes and {r["followup_year"] for r in changes} == {2016}
    assert {r["baseline_years"] for r in changes} <= {"2011, 2012", "none"}
    assert "2011, 2012" in {r["baseline_years"] for r in changes}
    assert 2016 in {r["year"] for r in years}


def test_a_changed_level_changes_the_report(warehouse_url, demo_warehouse):
    """The report prints the level the certified rows were tested at, and its 'significant' list follows it.
    The rows are re-judged at 1 % inside a transaction that is rolled back (the session's tables stay)."""
    import psycopg
    from psycopg.rows import dict_row

    from trivsel import report

    base, follow = "baseline", "followup"
    with psycopg.connect(warehouse.url(), row_factory=dict_row) as conn:
        at_5, _ = report.section_items(conn, {}, base, follow)
        conn.execute("update certified.survey_item_change set significance_level = 0.01,"
                     " significant = case when significant is not null then p_value <= 0.01 end")
        at_1, _ = report.section_items(conn, {}, base, follow)
        conn.rollback()
    assert "p ≤ 0,05" in at_5 and "p ≤ 0.05" in at_5
    assert "p ≤ 0,01" in at_1 and "p ≤ 0,05" not in at_1

    def n_significant(html: str) -> int:
        return html.split("5.3", 1)[0].count("<tr class=sig")

    strict = demo_warehouse.execute("""select count(*) as n from certified.survey_item_change
        where baseline_round = 'baseline' and followup_round = 'followup' and p_value > 0.01 and significant""")
    assert strict.fetchone()["n"] > 0, "the demo has items significant at 5 % but not at 1 %"
    assert n_significant(at_1) < n_significant(at_5)


def test_the_threshold_reaches_the_certified_build_and_keeps_the_partial_parse(demo_warehouse, tmp_path):
    """certify passes settings.small_cell_threshold to dbt as an environment variable (certify._dbt), not as a
    dbt var: the certified models compile with it, and a second build with another threshold keeps dbt's
    partial parse (a --vars change made dbt parse the whole project at every certify)."""
    from trivsel import certify

    target = tmp_path / "certify-build"
    compiled = target / "compiled" / "trivsel" / "models" / "certified" / "cert_absence_unit_year_v2.sql"
    rc, first = certify._dbt(["compile", "--select", "cert_absence_unit_year"], target, small_cell_threshold=7)
    assert rc == 0, first[-3000:]
    assert "ceil(fte) < 7" in compiled.read_text()
    assert "Unable to do partial parsing" in first  # a new target: no parse state yet
    rc, second = certify._dbt(["compile", "--select", "cert_absence_unit_year"], target, small_cell_threshold=3)
    assert rc == 0, second[-3000:]
    assert "ceil(fte) < 3" in compiled.read_text()
    assert "Unable to do partial parsing" not in second, second[-3000:]


def test_certify_runs_dbt_without_vars_in_a_kept_target(monkeypatch, tmp_path):
    """The certified build's command: the threshold in the environment, no --vars and no --no-partial-parse,
    its target (certify keeps it under TRIVSEL_HOME), and the previous invocation's run_results.json never
    read as its own."""
    from trivsel import certify

    calls = []

    class Proc:
        returncode, stdout, stderr = 0, "", ""

    def fake_run(cmd, env, **kwargs):
        calls.append((cmd, env, (target / "run_results.json").exists()))
        return Proc()

    class Conn:
        def execute(self, *args):
            return None

    target = tmp_path / "build"
    target.mkdir()
    (target / "run_results.json").write_text('{"results": [{"unique_id": "stale", "status": "error"}]}')
    monkeypatch.setenv(certify.SMALL_CELL_THRESHOLD_ENV, "99")  # a leftover of the caller's shell
    monkeypatch.setattr(certify.subprocess, "run", fake_run)
    monkeypatch.setattr(certify.warehouse, "dbt_env", lambda role=None: {"TRIVSEL_DBT_USER": role or ""})
    check = certify.build_certified(Conn(), 6, target)
    [(cmd, env, stale_present)] = calls
    assert check["passed"] and check["failures"] == [] and not stale_present
    assert env[certify.SMALL_CELL_THRESHOLD_ENV] == "6" and env["TRIVSEL_DBT_USER"] == warehouse.PUBLISHER
    assert "--vars" not in cmd and "--no-partial-parse" not in cmd
    assert cmd[cmd.index("--target-path") + 1] == str(target)
    assert certify.target_root().is_relative_to(settings.home())
    certify._dbt(["test"], target, role=warehouse.TRANSFORMER)
    assert certify.SMALL_CELL_THRESHOLD_ENV not in calls[-1][1]
