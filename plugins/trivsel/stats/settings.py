"""The statistical rules of config/municipalities.yml (settings.*), read in one place for every statistic.

Why: each statistic used to carry its own constant (0.05 in three modules), so changing
settings.significance_level changed nothing. Every rule the statistics apply comes from here; a key the
file leaves out takes the documented default (the evaluation's rules).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: the evaluation's rules: the defaults where config/municipalities.yml leaves a key out
DEFAULT_ALPHA = 0.05
DEFAULT_MINIMUM_RESPONSE_RATE = 0.60
DEFAULT_SMALL_CELL_THRESHOLD = 5
DEFAULT_MEANINGFUL_EFFECT_SIZE = 0.5
DEFAULT_POWER = 0.80
DEFAULT_BASELINE_YEARS = (2010, 2011, 2012)
DEFAULT_FOLLOWUP_YEARS = (2013,)


@dataclass(frozen=True)
class StatsSettings:
    """significance_level: a test is significant at p ≤ it (and the intervals are 1 − it).
    minimum_response_rate: below it a survey comparison is flagged low_response.
    small_cell_threshold: fewer persons than this behind a cell: suppressed, counts flagged low.
    meaningful_effect_size / power: a survey comparison is underpowered when the smallest standardised
    difference (Cohen's d) it detects with `power` at significance_level is larger than meaningful_effect_size.
    baseline_years / followup_years: the years the incident-rate change compares."""

    significance_level: float = DEFAULT_ALPHA
    minimum_response_rate: float = DEFAULT_MINIMUM_RESPONSE_RATE
    small_cell_threshold: int = DEFAULT_SMALL_CELL_THRESHOLD
    meaningful_effect_size: float = DEFAULT_MEANINGFUL_EFFECT_SIZE
    power: float = DEFAULT_POWER
    baseline_years: tuple[int, ...] = DEFAULT_BASELINE_YEARS
    followup_years: tuple[int, ...] = DEFAULT_FOLLOWUP_YEARS


def from_mapping(s: Mapping[str, Any]) -> StatsSettings:
    """The settings block of config/municipalities.yml as StatsSettings (missing keys: the defaults)."""
    alpha = float(s.get("significance_level", DEFAULT_ALPHA))
    power = float(s.get("power", DEFAULT_POWER))
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ValueError(f"settings.significance_level {alpha} and settings.power {power} must lie in (0, 1)")
    return StatsSettings(
        significance_level=alpha,
        minimum_response_rate=float(s.get("minimum_response_rate", DEFAULT_MINIMUM_RESPONSE_RATE)),
        small_cell_threshold=int(s.get("small_cell_threshold", DEFAULT_SMALL_CELL_THRESHOLD)),
        meaningful_effect_size=float(s.get("meaningful_effect_size", DEFAULT_MEANINGFUL_EFFECT_SIZE)),
        power=power,
        baseline_years=tuple(int(y) for y in s.get("baseline_years", DEFAULT_BASELINE_YEARS)),
        followup_years=tuple(int(y) for y in s.get("followup_years", DEFAULT_FOLLOWUP_YEARS)),
    )


def load() -> StatsSettings:
    """The settings of the configured config/municipalities.yml (trivsel.config)."""
    from trivsel.config import load_config

    return from_mapping(load_config().settings)


def significance_level() -> float:
    """The level the statistics test at, for the report to print beside its tables (settings.significance_level)."""
    return load().significance_level
