"""config/municipalities.yml: which municipality delivers what, in which registration scheme."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from trivsel import settings

CODE_RE = re.compile(r"^[0-9]{3}$")
PERIOD_RE = re.compile(r"^(19|20)[0-9]{2}-(0[1-9]|1[0-2])$")
CADENCES = ("monthly", "yearly", "wave")
ROUND_RE = re.compile(r"^[a-z][a-z0-9_]*$")
LOCATION_SCHEMES = ("file", "sftp", "https", "s3")


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
    # Where the municipality publishes this source (docs/remote-locations.md); None = the local inbox.
    location: str | None = None
    conn_id: str | None = None  # Airflow connection holding the credentials for location
    due_day: int | None = None  # day of the following month by which a period's delivery is due
    delete_after_pull: bool = False
    # survey only: round name (settings.survey_rounds) → the municipality's wave month YYYY-MM
    rounds: dict[str, str] = field(default_factory=dict)

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

    @property
    def survey_rounds(self) -> tuple[str, ...]:
        """The survey rounds in their configured order (settings.survey_rounds): the report's default
        comparison is the first against the second."""
        return tuple(self.settings.get("survey_rounds") or ())

    def round_months(self) -> list[tuple[str, int, str, str]]:
        """(round, its position in settings.survey_rounds from 1, municipality code, wave month) for every
        round a municipality surveyed in; a round a municipality has no month for is simply absent."""
        order = {r: i for i, r in enumerate(self.survey_rounds, start=1)}
        return [(r, order[r], m.code, month) for m in self.municipalities
                for r, month in sorted(m.sources["survey"].rounds.items(), key=lambda kv: order[kv[0]])]


def validate_period(period: str) -> str:
    if not PERIOD_RE.match(period or ""):
        raise ConfigError(f"period {period!r} is not of the form YYYY-MM")
    return period


def parse_config(data: dict[str, Any], where: str = "config") -> Config:
    """Check the whole file up front, so a typo fails the DAG parse with a clear message."""
    if not isinstance(data, dict) or "municipalities" not in data:
        raise ConfigError(f"{where}: top-level key 'municipalities' is missing")
    survey_rounds = _round_names((data.get("settings") or {}).get("survey_rounds"), where)
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
            extra = _remote_keys(sc, f"{where}: municipality {code} {source}")
            if "rounds" in sc:
                if source != "survey":
                    raise ConfigError(f"{where}: municipality {code} {source}: rounds belong to the survey "
                                      "source only")
                extra["rounds"] = _survey_rounds(sc["rounds"], survey_rounds, f"{where}: municipality {code} survey")
            sources[source] = SourceConfig(source, cadence, rules, **extra)
        for source in settings.SOURCES:
            sources.setdefault(source, SourceConfig(source, "monthly", ()))
        munis.append(Municipality(code, str(m.get("name", code)), units, sources, m))
    return Config(dict(data.get("settings") or {}), tuple(munis))


def _round_names(value: Any, where: str) -> tuple[str, ...]:
    """settings.survey_rounds: the ordered round names (baseline, followup, …); may be absent."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(r, str) and ROUND_RE.match(r) for r in value):
        raise ConfigError(f"{where}: settings.survey_rounds must be a list of round names (lower-case letters, "
                          f"digits, '_'), e.g. [baseline, followup]; got {value!r}")
    if len(set(value)) != len(value):
        raise ConfigError(f"{where}: settings.survey_rounds names a round twice: {value!r}")
    return tuple(value)


def _survey_rounds(value: Any, known: tuple[str, ...], where: str) -> dict[str, str]:
    """sources.survey.rounds: {round: "YYYY-MM"}. Every round must be one of settings.survey_rounds and each
    month a wave month of its own; a round left out (or given no month) is one the municipality did not
    take part in."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: rounds must map a round name to its wave month, "
                          f"e.g. {{baseline: \"2012-05\", followup: \"2013-05\"}}")
    out: dict[str, str] = {}
    for name, month in value.items():
        if name not in known:
            raise ConfigError(f"{where}: unknown survey round {name!r}; settings.survey_rounds has "
                              f"{', '.join(known) or 'none'}")
        if month is None or month == "":
            continue
        if not isinstance(month, str) or not PERIOD_RE.match(month):
            raise ConfigError(f"{where}: round {name}: wave month {month!r} is not of the form \"YYYY-MM\" "
                              "(quote it in YAML)")
        out[name] = month
    months = list(out.values())
    for month in set(months):
        if months.count(month) > 1:
            raise ConfigError(f"{where}: wave month {month} is given to more than one round")
    order = [out[r] for r in known if r in out]
    if order != sorted(order):
        raise ConfigError(f"{where}: the wave months {order} are not in the order of settings.survey_rounds "
                          f"({', '.join(known)})")
    return out


def _remote_keys(sc: dict[str, Any], where: str) -> dict[str, Any]:
    """location / conn_id / due_day / delete_after_pull of one source (see docs/remote-locations.md)."""
    from urllib.parse import urlsplit

    out: dict[str, Any] = {}
    location = sc.get("location")
    if location is not None:
        location = str(location)
        parts = urlsplit(location)
        if parts.scheme not in LOCATION_SCHEMES:
            raise ConfigError(f"{where}: location {location.split('://')[0]!r}:// is not one of "
                              f"{', '.join(s + '://' for s in LOCATION_SCHEMES)}")
        if parts.password is not None or "@" in parts.netloc:
            raise ConfigError(f"{where}: the location must not carry credentials; name an Airflow "
                              "connection in conn_id instead")
        if parts.scheme != "file" and not parts.hostname:
            raise ConfigError(f"{where}: location {parts.scheme}://... has no host (or bucket)")
        out["location"] = location
    conn_id = sc.get("conn_id")
    if conn_id is not None:
        if not re.match(r"^[A-Za-z0-9_.-]+$", str(conn_id)):
            raise ConfigError(f"{where}: conn_id {conn_id!r} is not an Airflow connection id")
        out["conn_id"] = str(conn_id)
    due_day = sc.get("due_day")
    if due_day is not None:
        if isinstance(due_day, bool) or not isinstance(due_day, int) or not 1 <= due_day <= 28:
            raise ConfigError(f"{where}: due_day {due_day!r} must be a day of the month from 1 to 28")
        out["due_day"] = due_day
    delete = sc.get("delete_after_pull", False)
    if not isinstance(delete, bool):
        raise ConfigError(f"{where}: delete_after_pull must be true or false")
    out["delete_after_pull"] = delete
    return out


#: libyaml's safe loader when PyYAML has it: every task process parses the DAG file, which reads this config;
#: the pure-Python loader took ~0.2 s of a ~0.8 s parse on 2 cores (the same safe subset of YAML)
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@lru_cache(maxsize=4)
def _load(path: str, mtime: float) -> Config:
    with open(path, encoding="utf-8") as fh:
        return parse_config(yaml.load(fh, Loader=_SAFE_LOADER), where=path)  # noqa: S506 - a safe loader


def load_config(path: Path | None = None) -> Config:
    p = Path(path or settings.config_path())
    return _load(str(p), p.stat().st_mtime)
