"""The pseudonymisation key: placeholders and short keys are refused with a message that says how to make one.

Employee numbers are a six-digit space, so whoever can guess the key reverses every pseudonym by trying all
numbers: a guessable key is no pseudonymisation at all."""

from __future__ import annotations

import os
import re
import secrets

import pytest

from trivsel import keys, settings
from trivsel.sources.base import DeliveryContext

REFUSED = [
    "change-me",
    "CHANGE-ME",
    " change-me\n",
    "changeme-changeme-changeme-changeme",
    "please-change-me-0123456789abcdef0123456789",  # long, but still says change-me
    "your-secret-key-here-placeholder-example",
    "example" * 6,
    "secret" * 6,
    "x" * 64,
    "ab" * 40,
    "0123" * 10,
    "short-but-random-9f8e7d",  # 23 bytes
    secrets.token_hex(15),  # 30 bytes, random but too short
]


def env_example_key() -> str:
    text = (settings.ROOT / ".env.example").read_text()
    match = re.search(rf"^{keys.KEY_ENV}=(.*)$", text, re.M)
    assert match, ".env.example names the key"
    return match.group(1).strip()


@pytest.mark.parametrize("value", REFUSED)
def test_placeholder_and_short_keys_are_refused(value, monkeypatch):
    monkeypatch.setenv(keys.KEY_ENV, value)
    with pytest.raises(keys.KeyRefused) as err:
        keys.pseudonym_key()
    message = str(err.value)
    assert "secrets.token_urlsafe(48)" in message, "the error says how to generate a key"
    assert keys.KEY_ENV in message and keys.KEY_CONN in message
    if value.strip() and len(value.strip()) > 8:
        assert value.strip() not in message, "the refused key itself is not echoed"


def test_the_env_example_value_is_refused(monkeypatch):
    monkeypatch.setenv(keys.KEY_ENV, env_example_key())
    with pytest.raises(keys.KeyRefused, match="placeholder"):
        keys.pseudonym_key()


def test_a_short_key_names_its_length(monkeypatch):
    monkeypatch.setenv(keys.KEY_ENV, "k3Y9-q1Zx-77Lm-pP0a-rT5v-wW2")  # 28 bytes
    with pytest.raises(keys.KeyRefused, match="28 bytes long; at least 32"):
        keys.pseudonym_key()


@pytest.mark.parametrize("value", [
    secrets.token_urlsafe(48), secrets.token_hex(32), secrets.token_hex(16),  # 32 hex chars = 32 bytes
    "test-key-not-a-secret-0123456789abcdef",  # tests/conftest.py
    "a-rotated-key-for-this-test-only",  # tests/reliability/test_deliveries.py
])
def test_generated_and_test_keys_pass(value, monkeypatch):
    monkeypatch.setenv(keys.KEY_ENV, value)
    assert keys.pseudonym_key() == value.encode()


def test_the_session_key_of_the_suite_passes():
    """The key every test process runs under (tests/conftest.py) is one the rule accepts."""
    assert keys.validate_key(os.environ[keys.KEY_ENV])


def test_the_demo_generates_an_accepted_key(tmp_path, monkeypatch):
    monkeypatch.setenv("TRIVSEL_HOME", str(tmp_path))
    generated = keys.ensure_local_key()
    assert keys.local_key_file().is_relative_to(tmp_path)
    assert keys.validate_key(generated) == generated.encode()


def test_a_placeholder_left_in_the_local_key_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("TRIVSEL_HOME", str(tmp_path))
    keys.local_key_file().parent.mkdir(parents=True)
    keys.local_key_file().write_text("change-me\n")
    with pytest.raises(keys.KeyRefused):
        keys.ensure_local_key()


def test_a_parser_context_refuses_a_weak_key():
    with pytest.raises(keys.KeyRefused):
        DeliveryContext("169", "2014-01", "x.csv", pseudonym_key=b"test-pseudonym-key")
    ctx = DeliveryContext("169", "2014-01", "x.csv", pseudonym_key=secrets.token_bytes(32).hex().encode())
    assert len(ctx.pseudonymise("004711")) == 64
