"""Registration schemes, one module each. Add a new scheme's module to _MODULES."""

from __future__ import annotations

import importlib

from trivsel.sources.base import SchemeModule

_MODULES: tuple[str, ...] = (
    # survey
    "survey_respondent_csv",
    "survey_population_csv",
    "survey_workbook_xlsx",
    # hr_absence
    "hr_payroll_csv",
    "hr_unit_workbook",
    "hr_unit_year_summary",
    # incidents and use of force
    "ohs_registry_export",
    "ohs_case_review",
    "reported_accidents_by_unit",
    "internal_incident_register",
    "incident_yearly_aggregate",
    "use_of_force_yearly",
)


def _load(name: str) -> SchemeModule | None:
    try:
        mod = importlib.import_module(f"trivsel.sources.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"trivsel.sources.{name}":
            return None  # not written yet
        raise
    return SchemeModule(scheme=mod.SCHEME, parse=mod.parse, bulk_plan=getattr(mod, "bulk_plan", None))


def all_schemes() -> dict[str, SchemeModule]:
    found = {}
    for name in _MODULES:
        module = _load(name)
        if module is not None:
            found[name] = module
    return found


def get_scheme(name: str) -> SchemeModule:
    module = _load(name)
    if module is None:
        raise KeyError(f"unknown registration scheme {name!r}: no module trivsel.sources.{name}")
    return module
