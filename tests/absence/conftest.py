"""Fixtures for the hr_absence parser tests (no database)."""

from __future__ import annotations

from pathlib import Path

import delivery_contexts
import pytest
from absence_helpers import KEY

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def municipalities() -> dict[str, dict]:
    return delivery_contexts.municipalities()


@pytest.fixture
def make_ctx(municipalities):
    return delivery_contexts.factory(municipalities, pseudonym_key=KEY)
