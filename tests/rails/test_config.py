"""config/municipalities.yml: the one place a municipality is onboarded."""

from __future__ import annotations

import pytest

from trivsel.config import ConfigError, load_config, parse_config
from trivsel.sources import all_schemes


def test_registered_municipalities():
    config = load_config()
    assert config.codes == ["169", "461", "607"]
    assert config.municipality("607").name == "Fredericia"


def test_every_configured_scheme_has_a_module():
    """A scheme named in config but missing in plugins/trivsel/sources would quarantine every file."""
    known = all_schemes()
    for m in load_config().municipalities:
        for source in m.sources.values():
            for rule in source.schemes:
                assert rule.scheme in known, f"{m.code}/{source.source}: no module for scheme {rule.scheme}"
                assert known[rule.scheme].scheme.source == source.source


def test_not_delivered_sources_are_explicit():
    config = load_config()
    assert not config.municipality("461").sources["hr_absence"].delivers
    assert not config.municipality("607").sources["use_of_force"].delivers
    assert config.municipality("169").sources["use_of_force"].delivers


def test_file_patterns_pick_the_scheme():
    hr = load_config().municipality("169").sources["hr_absence"]
    assert hr.scheme_for("fravaer_2014-01.csv").scheme == "hr_payroll_csv"
    assert hr.scheme_for("random.bin") is None


def test_new_municipality_on_existing_scheme_needs_only_config():
    data = {"municipalities": [{"code": "101", "name": "København", "units": [{"name": "Bo A"}],
                                "sources": {"survey": {"cadence": "wave",
                                                       "schemes": [{"scheme": "survey_respondent_csv"}]}}}]}
    config = parse_config(data)
    m = config.municipality("101")
    assert m.sources["survey"].scheme_for("anything.csv").scheme == "survey_respondent_csv"
    assert not m.sources["incidents"].delivers


@pytest.mark.parametrize("bad, message", [
    ({"municipalities": [{"code": "1x1"}]}, "3-digit"),
    ({"municipalities": [{"code": "101"}, {"code": "101"}]}, "twice"),
    ({"municipalities": [{"code": "101", "sources": {"payroll": {}}}]}, "unknown source"),
    ({"municipalities": [{"code": "101", "sources": {"survey": {"cadence": "daily"}}}]}, "cadence"),
    ({"municipalities": [{"code": "101", "units": [{"name": ""}]}]}, "no name"),
    ({}, "municipalities"),
])
def test_config_errors_are_clear(bad, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(bad)


def _survey_config(rounds, survey_rounds=("baseline", "followup")):
    settings = {} if survey_rounds is None else {"survey_rounds": list(survey_rounds)}
    return {"settings": settings,
            "municipalities": [{"code": "101", "sources": {"survey": {"cadence": "wave", "rounds": rounds}}}]}


def test_survey_rounds_of_the_sample_municipalities():
    config = load_config()
    assert config.survey_rounds[:2] == ("baseline", "followup")
    for code in ("169", "461", "607"):
        assert config.municipality(code).sources["survey"].rounds == {"baseline": "2012-05", "followup": "2013-05"}


def test_a_municipality_may_lack_a_round():
    config = parse_config(_survey_config({"followup": "2013-09", "baseline": None}))
    assert config.municipality("101").sources["survey"].rounds == {"followup": "2013-09"}
    assert config.round_months() == [("followup", 2, "101", "2013-09")]
    assert parse_config(_survey_config(None)).municipality("101").sources["survey"].rounds == {}


@pytest.mark.parametrize("rounds, survey_rounds, message", [
    ({"midterm": "2012-11"}, ("baseline", "followup"), "unknown survey round 'midterm'"),
    ({"baseline": "2012-5"}, ("baseline", "followup"), "not of the form \"YYYY-MM\""),
    ({"baseline": "2012-13"}, ("baseline", "followup"), "not of the form"),
    ({"baseline": 201205}, ("baseline", "followup"), "not of the form"),
    ({"baseline": "2012-05"}, None, "settings.survey_rounds has none"),
    (["2012-05"], ("baseline", "followup"), "must map a round name"),
    ({"baseline": "2013-05", "followup": "2012-05"}, ("baseline", "followup"), "not in the order"),
    ({"baseline": "2012-05", "followup": "2012-05"}, ("baseline", "followup"), "more than one round"),
    ({"baseline": "2012-05"}, ("baseline", "baseline"), "names a round twice"),
    ({"baseline": "2012-05"}, ("Baseline 1",), "must be a list of round names"),
])
def test_survey_round_errors_are_clear(rounds, survey_rounds, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")) as err:
        parse_config(_survey_config(rounds, survey_rounds))
    assert "101" in str(err.value) or "settings" in str(err.value)


def test_rounds_only_on_the_survey_source():
    data = {"settings": {"survey_rounds": ["baseline"]},
            "municipalities": [{"code": "101", "sources": {"incidents": {"rounds": {"baseline": "2012-05"}}}}]}
    with pytest.raises(ConfigError, match="survey source only"):
        parse_config(data)
