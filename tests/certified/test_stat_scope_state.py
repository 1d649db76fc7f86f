"""Statistics recompute only the scopes whose input changed (trivsel.stats.scope_state), and that gives the
warehouse a full recompute gives.

On the session's demo warehouse, per domain, inside one transaction that is rolled back (the session's
tables stay as the demo run wrote them): change one municipality's input, run incrementally, and compare
every row of the domain's reporting tables with `run(conn, full=True)`; a municipality that delivered nothing
new keeps its computed_at and run_id; a changed setting recomputes every scope, again equal to a full
recompute; a municipality whose input disappeared loses its rows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import psycopg
import pytest

from trivsel import warehouse
from trivsel.stats import absence, incidents, survey
from trivsel.stats import settings as rules
from trivsel.stats.scope_state import STATE_TABLE


def _table(conn, table: str) -> list[tuple]:
    return conn.execute(f"select * from {table} order by 1, 2, 3, 4, 5").fetchall()


def _state(conn, domain: str) -> dict[str, tuple]:
    return {r[0]: r[1:] for r in conn.execute(
        f"select scope, fingerprint, computed_at, run_id from {STATE_TABLE} where domain = %s", (domain,))}


@dataclasses.dataclass(frozen=True)
class Domain:
    module: object
    name: str
    tables: tuple[str, ...]
    source: str  # the relation whose rows of one municipality the test changes
    change: str  # an update/delete of that relation's rows of municipality %(code)s
    #: the demo has one payroll municipality only: that an untouched one is not recomputed is shown for absence
    #: on synthetic rows of three (tests/absence/test_absence_stats.py::test_only_changed_municipalities_rerun)
    has_untouched: bool = True


DOMAINS = [
    Domain(survey, "survey", (survey.TABLE,), "person.fct_survey_answer",
           "update person.fct_survey_answer set answer_ordinal = 1 where municipality_code = %(code)s"
           " and answer_ordinal is not null and not is_non_answer and item_code = (select min(item_code)"
           " from person.fct_survey_answer where municipality_code = %(code)s)"),
    Domain(absence, "absence", (absence.TABLE, absence.CHANGE_CI_TABLE), "person.fct_absence_employee_month",
           "update person.fct_absence_employee_month set sick_days = sick_days + 2, sick_hours = sick_hours + 14.8"
           " where municipality_code = %(code)s and employee_pseudonym in (select min(employee_pseudonym)"
           " from person.fct_absence_employee_month where municipality_code = %(code)s)", has_untouched=False),
    Domain(incidents, "incidents", (incidents.TABLE,), "marts.incident_rate_year",
           "update marts.incident_rate_year set n_counted = n_counted + 7 where municipality_code = %(code)s"
           " and status = 'reported'"),
]


def _run(d: Domain, conn, **kw) -> int:
    run: Callable[..., int] = d.module.run
    return run(conn, **kw)


@pytest.fixture()
def conn(demo_warehouse):
    with psycopg.connect(warehouse.url()) as c:  # not autocommit: everything below is rolled back
        yield c
        c.rollback()


@pytest.mark.parametrize("d", DOMAINS, ids=lambda d: d.name)
def test_incremental_equals_full_recompute(conn, d: Domain, monkeypatch):
    # in step with the warehouse first (the demo run's last statistics are already)
    _run(d, conn, run_id="sync")
    codes = [r[0] for r in conn.execute(f"select distinct municipality_code from {d.source} order by 1")]
    assert len(codes) >= (2 if d.has_untouched else 1), codes
    changed, untouched = codes[0], codes[-1] if d.has_untouched else None
    before_state = _state(conn, d.name)
    assert {changed, untouched} - {None} <= set(before_state)

    # nothing new: nothing recomputed, nothing rewritten
    before = {t: _table(conn, t) for t in d.tables}
    assert _run(d, conn, run_id="idle") == 0
    assert _state(conn, d.name) == before_state
    assert {t: _table(conn, t) for t in d.tables} == before

    # one municipality's input changes: only its scope (and a pooled one) is recomputed
    assert conn.execute(d.change, {"code": changed}).rowcount > 0
    _run(d, conn, run_id="incremental")
    state = _state(conn, d.name)
    recomputed = {s for s, (_fp, _at, run_id) in state.items() if run_id == "incremental"}
    assert changed in recomputed
    assert recomputed <= {changed, survey.ALL}, recomputed
    if untouched is not None:
        assert state[untouched] == before_state[untouched]  # same fingerprint, computed_at and run_id
    assert state[changed][0] != before_state[changed][0]
    incremental = {t: _table(conn, t) for t in d.tables}
    assert incremental[d.tables[0]] != before[d.tables[0]], "the changed input changed no result"
    _run(d, conn, full=True, run_id="full")
    assert {t: _table(conn, t) for t in d.tables} == incremental
    assert {s for s, v in _state(conn, d.name).items() if v[2] == "full"} == set(state)

    # a setting that changes the results recomputes every scope, to what a full recompute gives
    strict = dataclasses.replace(rules.load(), significance_level=0.01)
    monkeypatch.setattr(rules, "load", lambda: strict)
    _run(d, conn, run_id="setting")
    state = _state(conn, d.name)
    assert {s for s, v in state.items() if v[2] == "setting"} == set(state)
    at_setting = {t: _table(conn, t) for t in d.tables}
    assert at_setting[d.tables[0]] != incremental[d.tables[0]]
    levels = conn.execute(f"select distinct significance_level from {d.tables[0]}").fetchall()
    assert levels == [(0.01,)]
    _run(d, conn, full=True, run_id="full-setting")
    assert {t: _table(conn, t) for t in d.tables} == at_setting


def test_a_disappeared_scope_loses_its_rows(conn):
    incidents.run(conn, run_id="sync")
    code = conn.execute(f"select min(municipality_code) from {incidents.TABLE}").fetchone()[0]
    others = conn.execute(f"select count(*) from {incidents.TABLE} where municipality_code <> %s",
                          (code,)).fetchone()[0]
    conn.execute("delete from marts.incident_rate_year where municipality_code = %s", (code,))
    incidents.run(conn, run_id="gone")
    assert code not in _state(conn, "incidents")
    assert conn.execute(f"select count(*) from {incidents.TABLE} where municipality_code = %s",
                        (code,)).fetchone()[0] == 0
    assert conn.execute(f"select count(*) from {incidents.TABLE}").fetchone()[0] == others


def test_a_rerun_that_recomputes_the_same_scopes_keeps_the_warehouse_fingerprint(conn):
    """computed_at and run_id are bookkeeping (trivsel.integrity.BOOKKEEPING_COLUMNS): a re-run that
    recomputes a scope with the same result gives the same fingerprint; a changed input fingerprint does not."""
    from trivsel.integrity import fingerprint

    schema_name, table = STATE_TABLE.split(".")
    incidents.run(conn, run_id="first")
    before = fingerprint(conn, schema_name, table)
    incidents.run(conn, full=True, run_id="second")  # every scope recomputed: new computed_at and run_id
    assert {r[0] for r in conn.execute(f"select run_id from {STATE_TABLE} where domain = 'incidents'")} == {"second"}
    assert fingerprint(conn, schema_name, table) == before
    conn.execute(f"update {STATE_TABLE} set fingerprint = 'changed' where domain = 'incidents'")
    assert fingerprint(conn, schema_name, table) != before
