"""Helpers for the incident parser tests."""

from __future__ import annotations

from pathlib import Path

from trivsel.sources import get_scheme
from trivsel.sources.base import DeliveryContext


def write(tmp_path: Path, name: str, lines: list[str], encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def parse(scheme: str, path: Path, ctx: DeliveryContext) -> list[tuple[str, tuple]]:
    return list(get_scheme(scheme).parse(path, ctx))


def one_issue(ctx: DeliveryContext):
    assert len(ctx.issues) == 1, ctx.issues
    return ctx.issues[0]
