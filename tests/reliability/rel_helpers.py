"""Helpers for the reliability tests (importable: pytest puts this folder on sys.path)."""

from __future__ import annotations

from pathlib import Path

import pytest


def sample_file(sample_root: Path, relative: str) -> Path:
    path = sample_root / relative
    if not path.exists():
        pytest.skip(f"sample {relative} is not generated (yet) by trivsel.samples")
    return path
