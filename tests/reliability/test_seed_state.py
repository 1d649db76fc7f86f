"""The dbt_seeds task's decision (trivsel.seed_state): seeds are rebuilt when their files, their config, dbt or
their tables' rows changed, and only then."""

from __future__ import annotations

import shutil
from urllib.parse import urlsplit

import psycopg
import pytest
import throwaway_db

from trivsel import seed_state, settings

DB = "trivsel_seed_state"
RELATIONS = [("seeds", "codes_a"), ("seeds", "codes_b")]


@pytest.fixture()
def conn(warehouse_url):
    url = throwaway_db.create(warehouse_url, DB, rails=False)
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("create schema seeds")
        c.execute("create table seeds.codes_a (code text, label text)")
        c.execute("insert into seeds.codes_a values ('1', 'Sygdom'), ('2', 'Barsel')")
        c.execute("create table seeds.codes_b (n int)")
        c.execute("insert into seeds.codes_b values (1), (2), (3)")
        yield c
    throwaway_db.drop(warehouse_url, DB)


def test_the_fingerprint_follows_the_seed_files_and_the_project_config(tmp_path):
    project = tmp_path / "dbt"
    src = settings.dbt_dir()
    shutil.copytree(src / "seeds", project / "seeds")
    shutil.copytree(src / "macros", project / "macros")
    shutil.copy(src / "dbt_project.yml", project / "dbt_project.yml")
    first = seed_state.fingerprint(project)
    assert seed_state.fingerprint(project) == first, "the same files give the same fingerprint"
    (project / "models").mkdir()
    (project / "models" / "m.sql").write_text("select 1")
    assert seed_state.fingerprint(project) == first, "a model is not a seed input"

    seed = sorted((project / "seeds").rglob("*.csv"))[0]
    original = seed.read_bytes()
    seed.write_bytes(original + b"\n")
    assert seed_state.fingerprint(project) != first, "an edited seed CSV"
    seed.write_bytes(original)
    assert seed_state.fingerprint(project) == first

    config = project / "dbt_project.yml"
    config.write_text(config.read_text() + "\n# seeds config edited\n")
    assert seed_state.fingerprint(project) != first, "the project's config (seed schema, quoting)"


def test_seeds_are_unchanged_only_when_every_table_carries_the_stamp_of_its_rows(conn):
    fp = "f" * 64
    assert not seed_state.unchanged(conn, RELATIONS, fp), "never stamped: build"
    seed_state.mark(conn, RELATIONS, fp)
    assert seed_state.unchanged(conn, RELATIONS, fp)
    assert not seed_state.unchanged(conn, RELATIONS, "e" * 64), "other seed files or dbt: build"

    conn.execute("update seeds.codes_b set n = 4 where n = 3")
    assert not seed_state.unchanged(conn, RELATIONS, fp), "rows edited after the stamp: build"
    seed_state.mark(conn, RELATIONS, fp)
    assert seed_state.unchanged(conn, RELATIONS, fp)

    conn.execute("drop table seeds.codes_a")
    conn.execute("create table seeds.codes_a (code text, label text)")
    conn.execute("insert into seeds.codes_a values ('1', 'Sygdom'), ('2', 'Barsel')")
    assert not seed_state.unchanged(conn, RELATIONS, fp), "rebuilt outside the DAG (no stamp): build"
    conn.execute("drop table seeds.codes_a")
    assert not seed_state.unchanged(conn, RELATIONS, fp), "a missing seed table: build"
    assert not seed_state.unchanged(conn, [], fp), "no seeds known: build (nothing to trust)"


def test_the_seed_task_runs_dbt_only_when_a_seed_changed(conn, warehouse_url, monkeypatch):
    """The dbt_seeds operator: builds and stamps when the tables are not stamped, then succeeds without dbt
    until a table's rows change."""
    from cosmos.config import ProfileConfig
    from cosmos.operators.local import DbtSeedLocalOperator

    from trivsel import dbt_seed_operator

    url = urlsplit(warehouse_url)._replace(path=f"/{DB}").geturl()  # the fixture's database
    builds: list[int] = []

    def fake_dbt_seed(self, context, **kwargs):  # what `dbt seed --full-refresh` does to the tables
        builds.append(1)
        with psycopg.connect(url, autocommit=True) as c:
            c.execute("drop table if exists seeds.codes_a")
            c.execute("create table seeds.codes_a as select * from (values ('1', 'Sygdom'), ('2', 'Barsel')) "
                      "as v (code, label)")

    monkeypatch.setattr(DbtSeedLocalOperator, "execute", fake_dbt_seed)
    monkeypatch.setattr(dbt_seed_operator.warehouse, "connect",
                        lambda role, **kw: psycopg.connect(url, **kw))
    op = dbt_seed_operator.DbtSeedIfChangedOperator(
        task_id="dbt_seeds", project_dir=str(settings.dbt_dir()), full_refresh=True,
        profile_config=ProfileConfig(profile_name="trivsel", target_name="warehouse",
                                     profiles_yml_filepath=settings.dbt_dir() / "profiles.yml"),
        seed_relations=RELATIONS)

    op.execute({})
    assert builds == [1], "never stamped: dbt seed runs"
    op.execute({})
    assert builds == [1], "stamped and unchanged: no dbt"
    conn.execute("delete from seeds.codes_b where n = 1")
    op.execute({})
    assert builds == [1, 1], "a seed table's rows changed: dbt seed runs again"
    op.execute({})
    assert builds == [1, 1]
