"""Secrets come from an Airflow connection or the environment, never from the repository."""

from __future__ import annotations

import os
import re
import secrets as _secrets
from pathlib import Path

from trivsel import settings

KEY_ENV = "TRIVSEL_PSEUDONYM_KEY"
KEY_CONN = "trivsel_pseudonym_key"
MIN_KEY_BYTES = 32
GENERATE_HINT = 'python -c "import secrets; print(secrets.token_urlsafe(48))"'
EXAMPLE_VALUE = "change-me"  # the value .env.example ships with; tests/reliability check it is refused
# Words a key is made of only when somebody did not replace it; a key consisting of nothing else is refused.
_PLACEHOLDER_WORDS = ("change", "me", "example", "placeholder", "secret", "key", "your", "here", "replace",
                      "this", "with", "insert", "put", "todo", "xxx", "password", "pseudonym", "trivsel",
                      "test", "dummy", "default", "please", "the", "a", "my")
_ONLY_PLACEHOLDER = re.compile("^(?:" + "|".join(sorted(_PLACEHOLDER_WORDS, key=len, reverse=True)) + ")+$")
_PLACEHOLDER_PHRASES = ("change-me", "changeme", "change_me", "replace-me", "replaceme", "replace_me")


class KeyRefused(RuntimeError):
    """The configured pseudonymisation key is a placeholder or too short: pseudonyms under it could be
    reversed by anyone who guesses it, so nothing is pseudonymised with it."""


def _refusal(key: bytes) -> str | None:
    """Why a key is refused, or None. Employee numbers are a small space (six digits): whoever knows the key
    reverses every pseudonym by enumeration, so a guessable key is as bad as no pseudonymisation."""
    text = key.decode("utf-8", "replace").strip()
    lowered = text.lower()
    if lowered == EXAMPLE_VALUE or any(p in lowered for p in _PLACEHOLDER_PHRASES):
        return "it is the placeholder from .env.example"
    letters = re.sub(r"[^a-z0-9]", "", lowered)
    if not letters or _ONLY_PLACEHOLDER.match(letters):
        return "it is a placeholder, not a random key"
    for period in range(1, 5):  # 'aaaa…', 'abab…', 'abcabc…': repeated characters
        if len(text) > period and text == (text[:period] * (len(text) // period + 1))[:len(text)]:
            return "it is one short pattern repeated"
    if len(key.strip()) < MIN_KEY_BYTES:
        return f"it is {len(key.strip())} bytes long; at least {MIN_KEY_BYTES} are required"
    return None


def validate_key(key: str | bytes, where: str = KEY_ENV) -> bytes:
    """The key as bytes, or KeyRefused with what is wrong and how to make a good one."""
    raw = key.encode("utf-8") if isinstance(key, str) else bytes(key)
    reason = _refusal(raw)
    if reason:
        raise KeyRefused(f"pseudonymisation key refused ({where}): {reason}. Generate one with\n"
                         f"    {GENERATE_HINT}\n"
                         f"and set it as {KEY_ENV} or as the password of the Airflow connection {KEY_CONN} "
                         f"(docs/operations-reliability.md, 'Rotate the pseudonymisation key').")
    return raw


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
    where = KEY_ENV if os.environ.get(KEY_ENV) else f"Airflow connection {KEY_CONN}"
    value = os.environ.get(KEY_ENV) or _from_airflow()
    if not value:
        raise RuntimeError(
            f"no pseudonymisation key: set {KEY_ENV} or the Airflow connection {KEY_CONN} "
            f"(`make demo` writes a local one to {local_key_file()}; generate one with {GENERATE_HINT})")
    return validate_key(value, where)


def local_key_file() -> Path:
    return settings.home() / "secrets" / "pseudonym.key"


def ensure_local_key() -> str:
    """The demo's key: generated once per machine under .local/secrets (git-ignored)."""
    path = local_key_file()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_secrets.token_hex(32) + "\n")
        path.chmod(0o600)
    key = path.read_text().strip()
    validate_key(key, str(path))
    return key
