"""Fixtures of the production tests: Airflow started as `make up` starts it, on this session's warehouse.

`unscheduled_config` is a copy of municipalities.yml without a schedule: unpausing the DAG then starts only
the runs a test triggers (the empty-month rule of a scheduled run is not what these tests measure, and a
second full run would double their time).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml


@pytest.fixture(scope="session")
def unscheduled_config(warehouse_url: str, test_home: Path) -> Path:
    """municipalities.yml with `settings.schedule: null`: only triggered runs, no run for the current month."""
    from trivsel import settings

    cfg = yaml.safe_load(settings.config_path().read_text(encoding="utf-8"))
    cfg.setdefault("settings", {})["schedule"] = None
    out = test_home / "municipalities-unscheduled.yml"
    out.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return out
