"""Identifiers in free text and in exception messages never reach a readable table or a log (issue 13).

Deliveries are loaded through trivsel.loading.ingest_file into a throwaway database of the session's server:
an employee number or a CPR number typed into a free-text field (Beskrivelse, Fraværstekst) is masked
before the delivery is committed, on the Python parser's path and on the set-based path alike, and a parser
crash whose message quotes a value is logged without it."""

from __future__ import annotations

import dataclasses
import logging

import psycopg
import pytest
import throwaway_db

from trivsel import loading
from trivsel.privacy import describe_exception
from trivsel.sources import get_scheme

KEY = b"test-pseudonym-key-not-a-secret-7f3a9c1e"
DB = "free_text_privacy"
PAYROLL_HEADER = "Medarbejdernr;Enhed;Måned;Fraværskode;Fraværstekst;Fraværstimer;Normtimer;Årsværk"
REGISTRY_HEADER = "Sagsnr;Dato;Enhed;Hændelsestype;Skadetype;Fravær;Beskrivelse"
EMPLOYEE = "918273645"
CPR = "120345-6789"


@pytest.fixture(scope="module")
def env(warehouse_url, tmp_path_factory, monkeypatch_module):
    yield from throwaway_db.loader_env(warehouse_url, DB, tmp_path_factory, monkeypatch_module)


def _ingest(env, source: str, period: str, name: str, data: bytes, caplog=None):
    folder = env["inbox"] / "169" / source / period
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    with psycopg.connect(env["url"], autocommit=True) as conn:
        out = loading.ingest_file(conn, path, env["muni"], source, period, run_id="test", key=KEY)
    return path, out


def _payroll(texts: list[str], month: str) -> bytes:
    lines = [PAYROLL_HEADER] + [f"{101000 + 17 * i};VV fløj A;{month};SYG;{t};7,40;160,33;1,00"
                                for i, t in enumerate(texts)]
    return ("\r\n".join(lines) + "\r\n").encode("cp1252")


@pytest.mark.parametrize("bulk_from", ["0", "off"], ids=["set-based", "parser"])
def test_an_identifier_typed_into_fravaerstekst_is_masked_before_it_is_stored(env, monkeypatch, bulk_from):
    monkeypatch.setenv("TRIVSEL_BULK_FROM_BYTES", bulk_from)
    texts = ["Egen sygdom", f"Syg, se medarbejder {EMPLOYEE}", f"Barsel (cpr {CPR})", "Egen sygdom 2014"]
    month = "2014-02" if bulk_from == "0" else "2014-04"  # two keys: the same bytes twice are a duplicate
    path, out = _ingest(env, "hr_absence", month, f"fravaer_{month}.csv", _payroll(texts, month))
    assert out.status == "loaded", out.line()
    with psycopg.connect(env["url"]) as conn:
        stored = [t for (t,) in conn.execute("select absence_text from raw.hr_payroll_absence where delivery_id = %s"
                                             " order by source_row", (out.delivery_id,))]
    assert stored == ["Egen sygdom", "Syg, se medarbejder <9 digits masked>", "Barsel (cpr <10 digits masked>)",
                      "Egen sygdom 2014"], "identifiers masked, everything else as delivered"


def test_an_identifier_in_a_registry_description_is_masked_and_the_delivery_loads(env):
    rows = [REGISTRY_HEADER,
            "AS-2013-0001;06-01-2013;Vestervænget fløj A;Arbejdsulykke;Chok, som følge af aggression og trusler;"
            f"Uden fravær;Medarbejder {EMPLOYEE} truet på livet",
            "AS-2013-0002;31-01-2013;Vestervænget fløj A;Arbejdsulykke;Chok, som følge af aggression og trusler;"
            "Uden fravær;Episode med trusler ved aftensmad"]
    path, out = _ingest(env, "incidents", "2013-12", "arbejdsskader_2013.csv",
                        ("\n".join(rows) + "\n").encode("utf-8"))
    assert out.status in ("loaded", "waiting"), out.line()
    with psycopg.connect(env["url"]) as conn:
        stored = [t for (t,) in conn.execute("select description from raw.ohs_registration where delivery_id = %s"
                                             " order by source_row", (out.delivery_id,))]
    assert stored == ["Medarbejder <9 digits masked> truet på livet", "Episode med trusler ved aftensmad"]


def test_every_free_text_column_of_the_schemes_is_declared():
    """The columns docs/sources/*.md call free text are the ones the loader masks."""
    declared = {(s, c) for s in ("hr_payroll_csv", "ohs_registry_export", "ohs_case_review",
                                 "internal_incident_register", "incident_yearly_aggregate", "use_of_force_yearly")
                for t in get_scheme(s).scheme.tables for c in t.free_text_columns}
    assert declared == {("hr_payroll_csv", "absence_text"), ("ohs_registry_export", "description"),
                        ("ohs_case_review", "exclusion_reason"), ("internal_incident_register", "description"),
                        ("incident_yearly_aggregate", "note"), ("use_of_force_yearly", "note")}


def test_a_parser_crash_quoting_a_value_is_logged_and_stored_without_it(env, monkeypatch, caplog):
    """A parser bug whose exception message quotes the line: the task log gets the type and the masked
    message, no traceback with the raw message; the quarantine reason is masked too."""
    module = get_scheme("hr_payroll_csv")

    def crash(path, ctx):
        yield from ()
        try:
            int(f"{EMPLOYEE};VV fløj A")
        except ValueError as exc:
            raise RuntimeError(f"line 2: {EMPLOYEE};VV fløj A;2014-02") from exc

    monkeypatch.setattr(loading.ingest, "get_scheme", lambda name: dataclasses.replace(module, parse=crash))
    monkeypatch.setenv("TRIVSEL_BULK_FROM_BYTES", "off")
    with caplog.at_level(logging.INFO):
        path, out = _ingest(env, "hr_absence", "2014-03", "fravaer_2014-03.csv", _payroll(["Egen sygdom"], "2014-03"))
    assert out.status == "quarantined", out.line()
    assert "parser hr_payroll_csv failed on fravaer_2014-03.csv: RuntimeError: line 2: <9 digits masked>" \
        in caplog.text
    assert "ValueError: invalid literal" in caplog.text, "the cause is named"
    with psycopg.connect(env["url"]) as conn:
        stored = "\n".join(str(r) for r in conn.execute(
            "select check_name, reason, value from quarantine.delivery_issue where delivery_id = %s",
            (out.delivery_id,)))
        stored += conn.execute("select reason from audit.delivery where delivery_id = %s",
                               (out.delivery_id,)).fetchone()[0]
    assert "parser_error" in stored, "quarantined as a parser error (taken again after a fix)"
    for text in (caplog.text, stored, out.line()):
        assert EMPLOYEE not in text
    assert "fravaer_2014-03.csv" in stored and "<9 digits masked>" in stored


def test_describe_exception_masks_and_follows_the_cause():
    try:
        try:
            raise ValueError(f"invalid input syntax for type numeric: \"{EMPLOYEE}\"\nCONTEXT: COPY x, line 3")
        except ValueError as inner:
            raise KeyError("fravaer_20140101.csv") from inner
    except KeyError as exc:
        text = describe_exception(exc, keep=("fravaer_20140101.csv",))
    assert text == ("KeyError: 'fravaer_20140101.csv' <- ValueError: invalid input syntax for type numeric: "
                    "\"<9 digits masked>\"")
