"""Fixtures for the hr_absence parser tests (no database)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from absence_helpers import KEY

from trivsel.sources.base import DeliveryContext

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def municipalities() -> dict[str, dict]:
    with (ROOT / "config" / "municipalities.yml").open(encoding="utf-8") as fh:
        return {m["code"]: m for m in yaml.safe_load(fh)["municipalities"]}


@pytest.fixture
def make_ctx(municipalities):
    def make(code: str, period: str, file_name: str) -> DeliveryContext:
        return DeliveryContext(municipality_code=code, period=period, file_name=file_name,
                               municipality=municipalities[code], pseudonym_key=KEY)
    return make
