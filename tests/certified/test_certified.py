"""The certified schema after the demo pipeline: contracts, suppression, publication."""

from __future__ import annotations

import json

import pytest

from trivsel import certify

pytestmark = pytest.mark.e2e


def certified_tables(conn) -> list[str]:
    return [r["tablename"] for r in conn.execute(
        "select tablename from pg_tables where schemaname = 'certified' order by tablename")]


def test_every_certified_table_is_published_with_suppressed(demo_warehouse):
    tables = certified_tables(demo_warehouse)
    assert set(certify.TABLES.values()) | {"publication_log", "data_dictionary"} <= set(tables)
    for t in tables:
        col = demo_warehouse.execute(
            "select data_type from information_schema.columns where table_schema = 'certified'"
            " and table_name = %s and column_name = 'suppressed'", (t,)).fetchone()
        assert col and col["data_type"] == "boolean", t
    assert not demo_warehouse.execute("select 1 from pg_namespace where nspname in ('certified_next',"
                                      " 'certified_previous')").fetchone()


#: tables whose counts count events (incident episodes), not persons: published and flagged (docs/disclosure.md)
EVENT_TABLES = {"incident_episode_year", "incident_episode_year_v1", "incident_rate_change"}


def test_no_certified_count_of_persons_from_1_to_4(demo_warehouse):
    """Whatever run of the session published the certified schema last (the demo, or a later test's re-run of
    a period), it was published with the configured threshold and holds no person count 1 … threshold−1.

    The columns come from the catalog (pg_attribute), not information_schema, whose rows depend on the
    current role's privileges. A failure names the publication (run, periods) and the rows, so an
    order-dependent failure in the full suite says which test's run published them."""
    threshold = certify.threshold()
    last = demo_warehouse.execute(
        "select publication_id, run_id, periods, small_cell_threshold from certified.publication_log"
        " where outcome = 'published' order by publication_id desc limit 1").fetchone()
    assert last is not None, "no published certified version"
    assert last["small_cell_threshold"] == threshold, last
    cols = demo_warehouse.execute(
        """select c.relname as table_name, a.attname as column_name
             from pg_class as c
             join pg_namespace as n on n.oid = c.relnamespace
             join pg_attribute as a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
            where n.nspname = 'certified' and c.relkind in ('r', 'v', 'm', 'p') and a.attname like 'n\\_%'
            order by 1, 2""").fetchall()
    assert len(cols) >= 8, cols
    for c in cols:
        if c["table_name"] in EVENT_TABLES:
            continue
        bad = demo_warehouse.execute(
            f'select * from certified."{c["table_name"]}" where "{c["column_name"]}" between 1 and %s limit 5',
            (threshold - 1,)).fetchall()
        assert bad == [], (c, last, bad)


def test_small_episode_counts_are_published_and_flagged(demo_warehouse):
    """Episodes are events: Høje-Taastrup's 4 reported accidents in 2012 are printed (Table 7.1), flagged."""
    threshold = certify.threshold()
    rows = demo_warehouse.execute("select * from certified.incident_episode_year").fetchall()
    for r in rows:
        counts = [r["n_registered"], r["n_excluded"], r["n_counted"]]
        assert r["small_count"] == any(v is not None and 0 < v < threshold for v in counts), r
        assert r["suppressed"] is False
    [ht_2012] = [r for r in rows if (r["municipality_code"], r["register"], r["year"]) == ("169", "reported_accident", 2012)]
    assert ht_2012["n_counted"] == 4 and ht_2012["small_count"]


def test_suppression_really_happened_and_nulls_follow(demo_warehouse):
    rows = demo_warehouse.execute(
        "select count(*) filter (where suppressed) as s, count(*) as n from certified.survey_answer_distribution"
    ).fetchone()
    assert rows["s"] > 0, "the sample answers have small categories: some cells must be suppressed"
    assert demo_warehouse.execute(
        "select count(*) as n from certified.survey_answer_distribution where suppressed"
        " and (n_answers is not null or share_of_answers is not null)").fetchone()["n"] == 0


def test_secondary_suppression_no_lone_suppressed_category(demo_warehouse):
    """A suppressed category next to a published total and published other categories would be recoverable."""
    lone = demo_warehouse.execute(
        """select municipality_code, wave, round, item_code from certified.survey_answer_distribution
           group by municipality_code, wave, round, item_code
           having count(*) filter (where suppressed and not is_total) = 1
              and bool_and(not (suppressed and is_total))""").fetchall()
    assert lone == []
    lone = demo_warehouse.execute(
        """select coalesce(round, wave), item_code, answer_ordinal from certified.survey_answer_distribution
           group by coalesce(round, wave), item_code, answer_ordinal
           having count(*) filter (where suppressed and municipality_code <> 'ALL') = 1
              and bool_and(municipality_code <> 'ALL' or not suppressed)""").fetchall()
    assert lone == []


def test_contracts_are_enforced_and_versioned(demo_warehouse):
    import yaml

    from trivsel import settings

    spec = yaml.safe_load((settings.dbt_dir() / "models/certified/_certified__models.yml").read_text())
    versioned = [m for m in spec["models"] if "versions" in m]
    assert {m["name"] for m in versioned} == set(certify.TABLES)
    for m in versioned:
        assert m["config"]["contract"]["enforced"] is True
        # a change of shape is a new version beside the old one: the latest is the highest and keeps the plain
        # table name; every version is its own file
        assert m["latest_version"] == max(v["v"] for v in m["versions"])
        latest = next(v for v in m["versions"] if v["v"] == m["latest_version"])
        assert latest["config"]["alias"] == certify.TABLES[m["name"]]
        for v in m["versions"]:
            assert (settings.dbt_dir() / f"models/certified/{m['name']}_v{v['v']}.sql").exists(), (m["name"], v)
        aliases = {v["v"]: v["config"]["alias"] for v in m["versions"]}
        assert all(a == f"{certify.TABLES[m['name']]}_v{v}" for v, a in aliases.items() if v != m["latest_version"])
        assert all("data_type" in c and c.get("description") for c in m["columns"])
        assert any(c["name"] == "suppressed" for c in m["columns"])
    # the primary keys of the contracts exist in the database
    pk = demo_warehouse.execute(
        """select count(*) as n from pg_constraint c join pg_namespace n on n.oid = c.connamespace
           where n.nspname = 'certified' and c.contype = 'p'""").fetchone()["n"]
    assert pk >= 6


def test_publication_log_records_what_was_checked(demo_warehouse):
    rows = demo_warehouse.execute("select * from certified.publication_log where outcome = 'published'"
                                  " order by publication_id").fetchall()
    assert rows
    from trivsel.loading import periods_with_deliveries

    last = rows[-1]
    assert last["period"] == periods_with_deliveries()[-1], "the run's last period was certified"
    assert set(last["periods"]) == set(periods_with_deliveries()), "the backfill run certified every period"
    checks = last["checks"]
    assert {"deliveries", "dbt_tests", "certified_build", "certified_expectations"} <= set(checks)
    assert all(c["passed"] for c in checks.values())
    assert checks["certified_expectations"]["expectations"] > 20
    summary = last["quality_summary"]
    assert {"deliveries_loaded", "deliveries_quarantined", "not_delivered"} <= set(summary)
    assert last["small_cell_threshold"] == certify.threshold()
    assert json.loads(json.dumps(last["tables"]))["survey_item_change"] > 0
    # the data dictionary comes from the dbt docs
    d = demo_warehouse.execute("select * from certified.data_dictionary where table_name = 'survey_item_change'"
                               " and column_name = 'n_baseline'").fetchone()
    assert d["data_type"] == "integer" and "baseline" in d["description"]


def test_failed_certification_keeps_the_previous_state(demo_warehouse, monkeypatch):
    """A certification whose outputs fail their suite publishes nothing: certified stays as it was."""
    before = demo_warehouse.execute("select max(publication_id) as p from certified.publication_log").fetchone()["p"]
    n_before = demo_warehouse.execute("select count(*) as n from certified.survey_item_change").fetchone()["n"]

    def failing(small):
        return {"passed": False, "what": "forced failure", "failures": ["forced"]}

    monkeypatch.setattr(certify, "validate_outputs", failing)
    with pytest.raises(certify.CertificationFailed):
        certify.certify("2014-03", "test_forced_failure", dbt_tests={"passed": True, "what": "test"})
    after = demo_warehouse.execute("select max(publication_id) as p from certified.publication_log"
                                   " where outcome = 'published'").fetchone()["p"]
    assert after == before
    refusal = demo_warehouse.execute("select outcome, run_id, refusal_reason from certified.publication_log"
                                     " order by publication_id desc limit 1").fetchone()
    assert (refusal["outcome"], refusal["run_id"]) == ("refused", "test_forced_failure")
    assert "forced" in refusal["refusal_reason"]
    assert demo_warehouse.execute("select count(*) as n from certified.survey_item_change").fetchone()["n"] == n_before
    assert not demo_warehouse.execute("select 1 from pg_namespace where nspname = 'certified_next'").fetchone()
