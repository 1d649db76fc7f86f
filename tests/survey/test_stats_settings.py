"""Every statistical rule of config/municipalities.yml reaches trivsel.stats (issue 16: none is ignored)."""

from __future__ import annotations

import pytest

from trivsel.config import load_config
from trivsel.stats import settings as rules


def test_the_shipped_config_is_read_not_defaulted():
    shipped = load_config().settings
    r = rules.load()
    assert r.significance_level == shipped["significance_level"]
    assert r.minimum_response_rate == shipped["minimum_response_rate"]
    assert r.small_cell_threshold == shipped["small_cell_threshold"]
    assert r.meaningful_effect_size == shipped["meaningful_effect_size"]
    assert r.power == shipped["power"]
    assert r.baseline_years == tuple(shipped["baseline_years"])
    assert r.followup_years == tuple(shipped["followup_years"])
    assert rules.significance_level() == shipped["significance_level"]


@pytest.mark.parametrize("key,value,attr,expected", [
    ("significance_level", 0.01, "significance_level", 0.01),
    ("minimum_response_rate", 0.5, "minimum_response_rate", 0.5),
    ("small_cell_threshold", 3, "small_cell_threshold", 3),
    ("meaningful_effect_size", 0.3, "meaningful_effect_size", 0.3),
    ("power", 0.9, "power", 0.9),
    ("baseline_years", [2011, 2012], "baseline_years", (2011, 2012)),
    ("followup_years", [2013, 2014], "followup_years", (2013, 2014)),
])
def test_each_setting_changes_the_rules(key, value, attr, expected):
    default = getattr(rules.from_mapping({}), attr)
    changed = getattr(rules.from_mapping({key: value}), attr)
    assert changed == expected != default


def test_a_level_outside_0_1_is_refused():
    with pytest.raises(ValueError, match="significance_level"):
        rules.from_mapping({"significance_level": 5})
