"""Fixtures for the incident and use-of-force tests that need no database."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from trivsel.sources.base import DeliveryContext

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def incident_municipalities() -> dict[str, dict]:
    with (ROOT / "config" / "municipalities.yml").open(encoding="utf-8") as fh:
        return {m["code"]: m for m in yaml.safe_load(fh)["municipalities"]}


@pytest.fixture
def incident_ctx(incident_municipalities):
    def make(code: str, period: str, file_name: str) -> DeliveryContext:
        return DeliveryContext(municipality_code=code, period=period, file_name=file_name,
                               municipality=incident_municipalities[code])
    return make


@pytest.fixture(scope="session")
def incident_samples(tmp_path_factory) -> tuple[Path, list[Path]]:
    from trivsel.samples.incidents import generate

    inbox = tmp_path_factory.mktemp("incident_inbox")
    return inbox, generate(inbox)
