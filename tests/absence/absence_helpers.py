"""Helpers for the hr_absence tests (importable: pytest puts this folder on sys.path)."""

from __future__ import annotations

from pathlib import Path

KEY = b"test-pseudonym-key-not-a-secret-7f3a9c1e"


def write_csv(path: Path, lines: list[str], encoding: str = "cp1252") -> Path:
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return path
