"""Cross-delivery consistency at ingest (trivsel.consistency), through the real loader and a real PostgreSQL.

Each pair a scheme declares (`Scheme.requires`): a dependent delivery that cannot be matched yet with what
is loaded waits (audit.delivery status `waiting`, reason, raw rows kept but invisible to staging), becomes
`loaded` when its partner loads (same run in any order, or a later run), is held again when its partner
is replaced by one that no longer matches, and is quarantined when it can never match (no partner scheme
in the municipality's config).
"""

from __future__ import annotations

import dataclasses
import shutil

import pytest
from rel_helpers import sample_file

from trivsel import loading
from trivsel.config import load_config
from trivsel.sources import all_schemes

REGISTRY = "169/incidents/2013-12/arbejdsskader_2013.csv"
REVIEW = "169/incidents/2013-12/sagsgennemgang_2013.csv"
ANSWERS = "169/survey/2012-05/besvarelser_169_2012-05.csv"
POPULATION = "169/survey/2012-05/maalgruppe_169_2012-05.csv"


def _status(conn, file_name: str) -> list[tuple]:
    return conn.execute("select delivery_id, status, reason, rows_loaded from audit.delivery where file_name = %s"
                        " order by delivery_id", (file_name,)).fetchall()


def _raw_rows(conn, table: str, delivery_id: int) -> int:
    return conn.execute(f"select count(*) from raw.{table} where delivery_id = %s", (delivery_id,)).fetchone()[0]


def _by_file(outcomes) -> dict[str, loading.Outcome]:
    return {o.file_name: o for o in outcomes}


def test_every_declared_pair_is_a_known_scheme_of_the_same_source():
    schemes = all_schemes()
    pairs = {(name, p.scheme) for name, m in schemes.items() for p in m.scheme.requires}
    assert pairs >= {("ohs_case_review", "ohs_registry_export"), ("survey_population_csv", "survey_respondent_csv")}
    for name, partner in pairs:
        assert schemes[partner].scheme.source == schemes[name].scheme.source, (name, partner)


def test_case_review_without_its_registry_waits_then_loads_when_the_registry_arrives(wh, sample_root):
    review = wh.copy_sample(sample_root, REVIEW)
    first = _by_file(loading.ingest_municipality("169", "2013-12", "run-1"))
    assert first[review.name].status == "waiting"
    did, status, reason, rows = _status(wh.conn, review.name)[0]
    assert status == "waiting" and rows and rows > 0
    assert "ohs_registry_export" in reason and "has arrived yet" in reason and "169" in reason
    assert _raw_rows(wh.conn, "ohs_case_review", did) == rows, "a waiting delivery keeps its raw rows"
    # not visible to staging (loaded_rows reads status = 'loaded' only)
    assert wh.conn.execute("select count(*) from raw.ohs_case_review r join audit.delivery d using (delivery_id)"
                           " where d.status = 'loaded'").fetchone()[0] == 0

    again = _by_file(loading.ingest_municipality("169", "2013-12", "run-2"))
    assert (again[review.name].status, again[review.name].reason) == ("unchanged", f"already waiting as delivery {did}")
    assert [s for _d, s, _r, _n in _status(wh.conn, review.name)] == ["waiting"], "no second delivery row"

    registry = wh.copy_sample(sample_root, REGISTRY)
    second = _by_file(loading.ingest_municipality("169", "2013-12", "run-3"))
    assert second[registry.name].status == "loaded"
    assert second[review.name].status == "loaded" and "was waiting" in second[review.name].reason
    assert _status(wh.conn, review.name) == [(did, "loaded", None, rows)]
    hist = wh.conn.execute("select status, version from audit.delivery_history where delivery_id = %s",
                           (did,)).fetchone()
    assert hist == ("loaded", 1)


def test_both_files_in_one_run_load_whatever_their_order(wh, sample_root, monkeypatch):
    review = wh.copy_sample(sample_root, REVIEW)
    registry = wh.copy_sample(sample_root, REGISTRY)
    real = loading.discover  # ingest_municipality looks discover up in trivsel.loading.ingest
    monkeypatch.setattr(loading.ingest, "discover", lambda conn, code, period: sorted(real(conn, code, period),
                                                                                        key=lambda sp: sp[1].name,
                                                                                        reverse=True))
    outcomes = loading.ingest_municipality("169", "2013-12", "run-1")
    assert [o.file_name for o in outcomes][:2] == [review.name, registry.name], "the review went first"
    assert {o.file_name: o.status for o in outcomes} == {review.name: "loaded", registry.name: "loaded"}


def test_case_review_whose_registry_was_quarantined_waits_and_names_it(wh, sample_root):
    review = wh.copy_sample(sample_root, REVIEW)
    registry = wh.put(REGISTRY, b"Sagsnr;Dato\nnot a registry export\n")
    out = _by_file(loading.ingest_municipality("169", "2013-12", "run-1"))
    assert out[registry.name].status == "quarantined"
    assert out[review.name].status == "waiting"
    reason = _status(wh.conn, review.name)[0][2]
    assert registry.name in reason and "quarantined" in reason

    shutil.copyfile(sample_file(sample_root, REGISTRY), registry)  # the corrected export, same name
    out = _by_file(loading.ingest_municipality("169", "2013-12", "run-2"))
    assert out[registry.name].status == "loaded" and out[review.name].status == "loaded"
    assert [s for _d, s, _r, _n in _status(wh.conn, registry.name)] == ["quarantined", "loaded"]


def test_case_review_naming_a_case_the_registry_lacks_waits_with_its_row(wh, sample_root):
    wh.copy_sample(sample_root, REGISTRY)
    text = sample_file(sample_root, REVIEW).read_text(encoding="utf-8")
    review = wh.put(REVIEW, (text.rstrip("\n") + "\nAS-2013-9999;01-12-2013;Ja;Nej;\n").encode())
    n_lines = len(text.rstrip("\n").splitlines()) + 1
    out = _by_file(loading.ingest_municipality("169", "2013-12", "run-1"))
    assert out[review.name].status == "waiting"
    reason = _status(wh.conn, review.name)[0][2]
    assert f"1 of {n_lines - 1} rows (rows {n_lines})" in reason, reason
    assert "AS-2013-9999" not in reason, "the reason names rows, not case ids"
    assert "arbejdsskader_2013.csv" in reason, "names the loaded registry that lacks the case"


def test_loaded_review_is_held_when_its_registry_is_replaced_by_one_without_its_cases(wh, sample_root):
    registry = wh.copy_sample(sample_root, REGISTRY)
    review = wh.copy_sample(sample_root, REVIEW)
    out = _by_file(loading.ingest_municipality("169", "2013-12", "run-1"))
    assert out[review.name].status == "loaded"
    lines = sample_file(sample_root, REGISTRY).read_text(encoding="utf-8").splitlines()
    registry.unlink()
    corrected = wh.put("169/incidents/2013-12/arbejdsskader_2013_rettet.csv",
                       ("\n".join([lines[0]] + lines[2:]) + "\n").encode())  # without the first case
    out = _by_file(loading.ingest_municipality("169", "2013-12", "run-2"))
    assert out[corrected.name].status == "loaded"
    assert out[review.name].status == "waiting" and out[review.name].reason.startswith("held (was loaded)")
    assert _status(wh.conn, review.name)[0][1] == "waiting"


def test_population_without_answers_waits_then_loads_with_them(wh, sample_root):
    population = wh.copy_sample(sample_root, POPULATION)
    out = _by_file(loading.ingest_municipality("169", "2012-05", "run-1"))
    assert out[population.name].status == "waiting"
    did, _s, reason, rows = _status(wh.conn, population.name)[0]
    assert "survey_respondent_csv" in reason and f"{rows} of {rows} rows" in reason
    answers = wh.copy_sample(sample_root, ANSWERS)
    out = _by_file(loading.ingest_municipality("169", "2012-05", "run-2"))
    assert out[answers.name].status == "loaded" and out[population.name].status == "loaded"
    assert _status(wh.conn, population.name)[0][:2] == (did, "loaded")


def test_answers_without_population_load(wh, sample_root):
    """Not a pair in this direction: the wave shows respondents and no rate (docs/sources/survey_respondent_csv.md)."""
    answers = wh.copy_sample(sample_root, ANSWERS)
    assert _by_file(loading.ingest_municipality("169", "2012-05", "run-1"))[answers.name].status == "loaded"


def test_dependent_delivery_without_a_partner_scheme_in_config_is_quarantined(wh, sample_root):
    config = load_config()
    muni = config.municipality("169")
    survey = muni.sources["survey"]
    only_population = dataclasses.replace(
        survey, schemes=tuple(r for r in survey.schemes if r.scheme == "survey_population_csv"))
    sources = dict(muni.sources, survey=only_population)
    patched = dataclasses.replace(muni, sources=sources)
    config = dataclasses.replace(config, municipalities=tuple(
        patched if m.code == "169" else m for m in config.municipalities))
    population = wh.copy_sample(sample_root, POPULATION)
    out = _by_file(loading.ingest_municipality("169", "2012-05", "run-1", config=config))
    assert out[population.name].status == "quarantined"
    did, status, reason, _rows = _status(wh.conn, population.name)[0]
    assert "never match" in reason and "survey_respondent_csv" in reason
    assert _raw_rows(wh.conn, "survey_population_csv", did) == 0
    issues = wh.conn.execute("select check_name from quarantine.delivery_issue where delivery_id = %s",
                             (did,)).fetchall()
    assert issues == [("consistency",)]


@pytest.mark.parametrize("relative", [REVIEW, POPULATION])
def test_a_waiting_delivery_does_not_fail_the_ingest_task(wh, sample_root, relative):
    from trivsel import pipeline

    wh.copy_sample(sample_root, relative)
    period = relative.split("/")[2]
    result = pipeline.ingest("169", period, "run-1")  # raises DeliveriesQuarantined on a quarantine
    assert [r["status"] for r in result] == ["waiting"]
