"""Fixtures for the privacy tests: the sample deliveries, generated once per session."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def sample_root(tmp_path_factory) -> Path:
    """Every domain's sample deliveries in the inbox layout (<code>/<source>/<period>/<file>)."""
    root = tmp_path_factory.mktemp("samples")
    for domain in ("survey", "absence", "incidents"):
        importlib.import_module(f"trivsel.samples.{domain}").generate(root)
    return root
