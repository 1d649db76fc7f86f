"""Secrets come from an Airflow connection or the environment, never from the repository."""

from __future__ import annotations

import os
import secrets as _secrets
from pathlib import Path

from trivsel import settings

KEY_ENV = "TRIVSEL_PSEUDONYM_KEY"
KEY_CONN = "trivsel_pseudonym_key"


def _from_airflow() -> str | None:
    if not (os.environ.get(f"AIRFLOW_CONN_{KEY_CONN.upper()}") or os.environ.get("AIRFLOW_HOME")):
        return None
    try:
        from airflow.sdk import BaseHook  # Airflow 3
    except Exception:  # noqa: BLE001 - Airflow is optional for the CLI
        return None
    try:
        conn = BaseHook.get_connection(KEY_CONN)
    except Exception:  # noqa: BLE001 - the connection is simply not defined
        return None
    return conn.password or None


def pseudonym_key() -> bytes:
    """The key for pseudonymising employee identifiers. Environment first, then the Airflow connection."""
    value = os.environ.get(KEY_ENV) or _from_airflow()
    if not value:
        raise RuntimeError(
            f"no pseudonymisation key: set {KEY_ENV} or the Airflow connection {KEY_CONN} "
            f"(`make demo` writes a local one to {local_key_file()})")
    return value.encode("utf-8")


def local_key_file() -> Path:
    return settings.home() / "secrets" / "pseudonym.key"


def ensure_local_key() -> str:
    """The demo's key: generated once per machine under .local/secrets (git-ignored)."""
    path = local_key_file()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_secrets.token_hex(32) + "\n")
        path.chmod(0o600)
    return path.read_text().strip()
