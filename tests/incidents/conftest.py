"""Fixtures for the incident and use-of-force tests that need no database."""

from __future__ import annotations

from pathlib import Path

import delivery_contexts
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def incident_municipalities() -> dict[str, dict]:
    return delivery_contexts.municipalities()


@pytest.fixture
def incident_ctx(incident_municipalities):
    return delivery_contexts.factory(incident_municipalities)


@pytest.fixture(scope="session")
def incident_samples(tmp_path_factory) -> tuple[Path, list[Path]]:
    from trivsel.samples.incidents import generate

    inbox = tmp_path_factory.mktemp("incident_inbox")
    return inbox, generate(inbox)
