"""The attacker test on a generated case with many small cells, through the project's code: hand-made
person-level answers in a database of its own → trivsel.stats.survey (tiers) → the real dbt models
(int_survey_answer_counts, then cert_survey_answer_distribution and cert_survey_item_change, built into
certified_next as the certify task builds them) → the attacker, reading as `evaluator`.

Four small municipalities (6–14 respondents) answer skewed 5- and 4-point items in two rounds: most
distributions have a category of 1–4 answers, some have n of 1–4 in a wave, some means sit at the edge of
the scale where n and the mean alone pin a small category."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import throwaway_db
from psycopg.rows import dict_row

from trivsel import settings, warehouse

sys.path.insert(0, str(Path(__file__).parent))
import disclosure_attack as attack  # noqa: E402
from test_disclosure_attack import small_recovered, squares_of, truth  # noqa: E402

pytestmark = pytest.mark.e2e

DB = "disclosure_generated"
THRESHOLD = 5
ROUNDS = (("baseline", 1, "2012-05"), ("followup", 2, "2013-05"))
MUNICIPALITIES = {"901": 14, "902": 9, "903": 6, "904": 11}

UPSTREAM = """
create schema if not exists marts;
create schema if not exists person;
create schema if not exists intermediate;
create schema if not exists reporting;
create table person.fct_survey_answer (municipality_code text, wave text, round text, item_code text,
    respondent_key text, answer_ordinal integer, is_non_answer boolean, scale_points integer, delivery_id bigint,
    reference_fingerprint text);
create table intermediate.int_survey_item_answers (item_code text, answer_ordinal integer, answer_label text,
    answer_label_en text, is_non_answer boolean);
create table marts.dim_survey_item (item_code text, dimension_da text, dimension_en text, text_da text,
    text_en text);
create table marts.survey_response_rate (municipality_code text, unit_name text, wave text, round text,
    round_order integer, respondents integer, target_population integer, minimum_response_rate numeric);
"""


def items() -> dict[str, tuple[int, list[float]]]:
    """item → (scale points, answer probabilities): skewed, with edge items nearly all at one end."""
    out = {}
    for i in range(10):
        out[f"9.{i}.1"] = (5, [0.02, 0.05, 0.18, 0.45, 0.30])
    for i in range(3):
        out[f"9.{i}.2"] = (5, [0.0, 0.0, 0.0, 0.08, 0.92])  # n and the mean alone pin the small category
    for i in range(3):
        out[f"9.{i}.3"] = (4, [0.05, 0.15, 0.5, 0.3])
    return out


def generate(conn) -> None:
    rng = random.Random(20131)
    with conn.cursor() as cur:
        for item, (k, _) in items().items():
            cur.execute("insert into marts.dim_survey_item values (%s, 'D', 'D', %s, %s)", (item, item, item))
            for o in range(1, k + 1):
                cur.execute("insert into intermediate.int_survey_item_answers values (%s, %s, %s, %s, false)",
                            (item, o, f"svar {o}", f"answer {o}"))
        for code, size in MUNICIPALITIES.items():
            for rnd, order, wave in ROUNDS:
                n = max(2, size + rng.randint(-3, 2))
                cur.execute("insert into marts.survey_response_rate values (%s, null, %s, %s, %s, %s, %s, 0.60)",
                            (code, wave, rnd, order, n, size + 3))
                for r in range(n):
                    for item, (k, p) in items().items():
                        # a few respondents skip an item: some waves get an n of 1–4 for it
                        if n < 6 and rng.random() < 0.3:
                            continue
                        o = rng.choices(range(1, k + 1), weights=p)[0]
                        cur.execute("insert into person.fct_survey_answer values (%s, %s, %s, %s, %s, %s,"
                                    " false, %s, %s, 'generated')",
                                    (code, wave, rnd, item, f"{code}:{rnd}:{r}", o, k, int(code) * 10 + order))


def _dbt_run(url: str, target: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, WAREHOUSE_URL=url)
    env.update(warehouse.dbt_env())
    env["TRIVSEL_DBT_DBNAME"] = DB
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    dbt = str(Path(sys.executable).with_name("dbt"))
    return subprocess.run(
        # the distributions sum the answers counted per delivery (int_survey_answer_counts, built from the fact)
        [dbt, "run", "--select", "int_survey_answer_counts", "cert_survey_answer_distribution",
         "cert_survey_item_change",
         "--project-dir", str(settings.dbt_dir()), "--profiles-dir", str(settings.dbt_dir()),
         "--target-path", str(target / "target"), "--log-path", str(target / "logs"),
         "--vars", json.dumps({"small_cell_threshold": THRESHOLD})],
        env=env, capture_output=True, text=True, cwd=str(settings.dbt_dir()), timeout=900)


@pytest.fixture(scope="module")
def generated(warehouse_url, tmp_path_factory, monkeypatch_module):
    from trivsel.stats import survey

    url = throwaway_db.create(warehouse_url, DB, rails=False)
    monkeypatch_module.setenv("WAREHOUSE_URL", url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(UPSTREAM)
        generate(conn)
        survey.run(conn)
    res = _dbt_run(url, tmp_path_factory.mktemp("dbt"))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        # the role exists once the session's warehouse has had `trivsel roles apply`; alone, make it here
        conn.execute("do $$ begin create role evaluator nologin; exception when duplicate_object then null; end $$")
        conn.execute("grant usage on schema certified_next to evaluator")
        conn.execute("grant select on all tables in schema certified_next to evaluator")
        counts, scale = truth(conn)
        conn.execute("set role evaluator")
        tables = {t: conn.execute(f"select * from certified_next.{t}").fetchall()
                  for t in ("survey_answer_distribution", "survey_item_change")}
    yield counts, scale, tables
    monkeypatch_module.undo()
    throwaway_db.drop(warehouse_url, DB)


def test_the_generated_case_has_many_small_cells(generated):
    counts, _, tables = generated
    small = sum(1 for v in counts.values() for c in v if 0 < c < THRESHOLD)
    assert small >= 100
    assert sum(1 for r in tables["survey_answer_distribution"] if r["suppressed"]) >= 100


def test_attacker_recovers_no_small_generated_cell(generated):
    counts, scale, tables = generated
    pins = attack.attack_survey(tables["survey_answer_distribution"], tables["survey_item_change"],
                                squares_of(counts), scale)
    assert small_recovered(pins, counts, THRESHOLD) == []


def test_naive_suppression_of_the_generated_case_is_broken(generated):
    counts, scale, _ = generated
    dist, changes = attack.naive_publication(counts, THRESHOLD)
    pins = attack.attack_survey(dist, changes, squares_of(counts), scale)
    assert len(small_recovered(pins, counts, THRESHOLD)) >= 20


def test_edge_means_are_withheld_and_others_published(generated):
    """The edge items' means (n and the mean pin the small category) are withheld where a category is
    small; elsewhere means over ≥ 5 respondents are published."""
    counts, _, tables = generated
    rows = [r for r in tables["survey_item_change"] if r["municipality_code"] != "ALL"]
    edge = [r for r in rows if r["item_code"].endswith(".2")
            and 0 < counts[(r["municipality_code"], "baseline", r["item_code"])][3] < THRESHOLD]
    assert edge and all(r["mean_baseline"] is None for r in edge)
    assert any(r["mean_baseline"] is not None for r in rows if r["item_code"].endswith(".1"))
