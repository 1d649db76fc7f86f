"""DeliveryContexts for the parser tests that need no database: a municipality of the repository's config
(config/municipalities.yml, as delivered, not parsed) and the file the test hands the parser."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml

from trivsel.sources.base import DeliveryContext

CONFIG = Path(__file__).resolve().parents[1] / "config" / "municipalities.yml"


def municipalities() -> dict[str, dict]:
    """The config's municipalities by code, as the YAML has them."""
    with CONFIG.open(encoding="utf-8") as fh:
        return {m["code"]: m for m in yaml.safe_load(fh)["municipalities"]}


def factory(by_code: dict[str, dict], pseudonym_key: bytes | None = None
            ) -> Callable[[str, str, str], DeliveryContext]:
    """make(code, period, file_name): the context a parser sees for that delivery; with `pseudonym_key` for
    the sources that pseudonymise an employee number."""
    def make(code: str, period: str, file_name: str) -> DeliveryContext:
        return DeliveryContext(municipality_code=code, period=period, file_name=file_name,
                               municipality=by_code[code], pseudonym_key=pseudonym_key)
    return make
