"""config/municipalities.yml: which municipality delivers what, in which registration scheme."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from trivsel import settings

CODE_RE = re.compile(r"^[0-9]{3}$")
PERIOD_RE = re.compile(r"^(19|20)[0-9]{2}-(0[1-9]|1[0-2])$")
CADENCES = ("monthly", "yearly", "wave")


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class SchemeRule:
    scheme: str
    files: str  # glob on the file name

    def matches(self, file_name: str) -> bool:
        return fnmatch.fnmatchcase(file_name.lower(), self.files.lower())


@dataclass(frozen=True)
class SourceConfig:
    source: str
    cadence: str
    schemes: tuple[SchemeRule, ...]

    @property
    def delivers(self) -> bool:
        return bool(self.schemes)

    def scheme_for(self, file_name: str) -> SchemeRule | None:
        for rule in self.schemes:
            if rule.matches(file_name):
                return rule
        return None


@dataclass(frozen=True)
class Municipality:
    code: str
    name: str
    units: tuple[dict[str, Any], ...]
    sources: dict[str, SourceConfig]
    raw: dict[str, Any]

    @property
    def unit_names(self) -> list[str]:
        return [u["name"] for u in self.units]


@dataclass(frozen=True)
class Config:
    settings: dict[str, Any]
    municipalities: tuple[Municipality, ...]

    def municipality(self, code: str) -> Municipality:
        for m in self.municipalities:
            if m.code == code:
                return m
        raise ConfigError(f"municipality {code!r} is not registered in {settings.config_path()}")

    @property
    def codes(self) -> list[str]:
        return [m.code for m in self.municipalities]


def validate_period(period: str) -> str:
    if not PERIOD_RE.match(period or ""):
        raise ConfigError(f"period {period!r} is not of the form YYYY-MM")
    return period


def parse_config(data: dict[str, Any], where: str = "config") -> Config:
    """Check the whole file up front, so a typo fails the DAG parse with a clear message."""
    if not isinstance(data, dict) or "municipalities" not in data:
        raise ConfigError(f"{where}: top-level key 'municipalities' is missing")
    munis = []
    seen = set()
    for i, m in enumerate(data["municipalities"] or []):
        code = str(m.get("code", ""))
        if not CODE_RE.match(code):
            raise ConfigError(f"{where}: municipalities[{i}].code {code!r} is not a 3-digit kommunekode")
        if code in seen:
            raise ConfigError(f"{where}: municipality {code} is registered twice")
        seen.add(code)
        units = tuple(m.get("units") or [])
        for j, u in enumerate(units):
            if not isinstance(u, dict) or not str(u.get("name", "")).strip():
                raise ConfigError(f"{where}: municipality {code} units[{j}] has no name")
        sources = {}
        for source, sc in (m.get("sources") or {}).items():
            if source not in settings.SOURCES:
                raise ConfigError(f"{where}: municipality {code}: unknown source {source!r}; "
                                  f"known: {', '.join(settings.SOURCES)}")
            cadence = sc.get("cadence", "monthly")
            if cadence not in CADENCES:
                raise ConfigError(f"{where}: municipality {code} {source}: cadence {cadence!r} not in {CADENCES}")
            rules = tuple(SchemeRule(str(r["scheme"]), str(r.get("files", "*"))) for r in sc.get("schemes") or [])
            sources[source] = SourceConfig(source, cadence, rules)
        for source in settings.SOURCES:
            sources.setdefault(source, SourceConfig(source, "monthly", ()))
        munis.append(Municipality(code, str(m.get("name", code)), units, sources, m))
    return Config(dict(data.get("settings") or {}), tuple(munis))


@lru_cache(maxsize=4)
def _load(path: str, mtime: float) -> Config:
    with open(path, encoding="utf-8") as fh:
        return parse_config(yaml.safe_load(fh), where=path)


def load_config(path: Path | None = None) -> Config:
    p = Path(path or settings.config_path())
    return _load(str(p), p.stat().st_mtime)
