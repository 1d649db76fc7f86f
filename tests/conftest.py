"""Shared fixtures. One test warehouse per session: the real pipeline runs over every sample period once.

The test warehouse is separate from the demo's: its own TRIVSEL_HOME (.local/test) and port.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEST_HOME = Path(os.environ.get("TRIVSEL_TEST_HOME", ROOT / ".local" / "test"))

# Set before anything imports trivsel settings, so every test and subprocess points at the test warehouse.
os.environ["TRIVSEL_HOME"] = str(TEST_HOME)
os.environ.setdefault("TRIVSEL_PG_PORT", "55433")
os.environ.setdefault("TRIVSEL_PSEUDONYM_KEY", "test-key-not-a-secret-0123456789abcdef")
os.environ.setdefault("TRIVSEL_TASK_RETRIES", "0")
os.environ.pop("WAREHOUSE_URL", None) if os.environ.get("TRIVSEL_TEST_EXTERNAL") != "1" else None


@pytest.fixture(scope="module")
def monkeypatch_module():
    """monkeypatch for module-scoped fixtures (environment of a module's throwaway database)."""
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.fixture(scope="session")
def test_home() -> Path:
    return TEST_HOME


@pytest.fixture(scope="session")
def warehouse_url(test_home: Path) -> str:
    """A fresh embedded warehouse for this session."""
    from trivsel import warehouse

    if warehouse.status() == "running":
        warehouse.stop()
    if test_home.exists():
        shutil.rmtree(test_home)
    test_home.mkdir(parents=True)
    url = warehouse.start()
    yield url
    warehouse.stop()


@pytest.fixture(scope="session")
def demo_run(warehouse_url: str) -> dict[str, int]:
    """`trivsel samples`, then the monthly DAG over every sample period, as `make demo` does.

    Returns {period: exit code of the DAG run that loaded it}.
    """
    from trivsel import cli
    from trivsel.loading import periods_with_deliveries

    assert cli.main(["samples"]) == 0
    periods = periods_with_deliveries()
    assert periods, "the sample generators wrote no deliveries"
    rc = cli.run_period(periods[0], through=periods[-1])
    return {p: rc for p in periods}


@pytest.fixture(scope="session")
def demo_warehouse(demo_run):
    """A psycopg connection (autocommit, dict rows) to the warehouse after the demo pipeline ran."""
    import psycopg
    from psycopg.rows import dict_row

    from trivsel import warehouse

    with psycopg.connect(warehouse.url(), autocommit=True, row_factory=dict_row) as conn:
        yield conn


def pytest_collection_finish(session) -> None:
    """When Superset's tests are selected, install its venv (.venv-bi, cached) in a thread from the start: on
    a fresh clone that pip install takes minutes, and it needs nothing the session builds, so it overlaps the
    demo run instead of following it. tests/bi's fixture joins the thread (request.config.trivsel_bi_venv)."""
    if not any(item.get_closest_marker("bi") and item.get_closest_marker("e2e") for item in session.items):
        return

    def install() -> None:
        try:
            from trivsel.bi import server

            server.ensure_venv()
        except Exception as exc:  # noqa: BLE001 - the fixture installs again and reports it there
            print(f"bi: early venv install failed ({type(exc).__name__}); tests/bi retries it", flush=True)

    thread = threading.Thread(target=install, name="bi-venv", daemon=True)
    thread.start()
    session.config.trivsel_bi_venv = thread
