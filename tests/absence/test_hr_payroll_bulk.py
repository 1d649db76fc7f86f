"""hr_payroll_csv: the set-based path (bulk_plan) gives exactly what the Python parser gives.

Every file is loaded twice through trivsel.loading.ingest_file, into two throwaway databases of the session's
server: once with TRIVSEL_BULK_FROM_BYTES=0 (set-based) and once with =off (the parser). Statuses, raw rows
(without delivery_id) and quarantine issues (row, column, check, reason, value, in order) must be equal.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path

import psycopg
import pytest
import throwaway_db
import yaml
from absence_helpers import KEY

from trivsel import loading
from trivsel.bench.generate import Muni, write_absence
from trivsel.config import parse_config
from trivsel.sources import bulk, hr_payroll_csv
from trivsel.sources.base import DeliveryContext, FileRejected

ROOT = Path(__file__).resolve().parents[2]
PERIOD = "2014-01"
HEADER = "Medarbejdernr;Enhed;Måned;Fraværskode;Fraværstekst;Fraværstimer;Normtimer;Årsværk"
DATABASES = {"bulk": "hr_payroll_bulk_eq_bulk", "python": "hr_payroll_bulk_eq_python"}
MODES = {"bulk": "0", "python": "off"}


@pytest.fixture(scope="module")
def env(warehouse_url, tmp_path_factory, monkeypatch_module):
    """Two throwaway databases (one per path), an inbox and an archive, and municipality 169 as configured."""
    urls = {mode: throwaway_db.create(warehouse_url, db) for mode, db in DATABASES.items()}
    inbox = tmp_path_factory.mktemp("inbox")
    monkeypatch_module.setenv("TRIVSEL_INBOX", str(inbox))
    monkeypatch_module.setenv("TRIVSEL_ARCHIVE", str(tmp_path_factory.mktemp("archive")))
    with (ROOT / "config" / "municipalities.yml").open(encoding="utf-8") as fh:
        config = parse_config(yaml.safe_load(fh))
    muni = next(m for m in config.municipalities if m.code == "169")
    yield {"urls": urls, "muni": muni, "inbox": inbox}
    monkeypatch_module.undo()
    throwaway_db.drop(warehouse_url, *DATABASES.values())


class Route:
    """Which way the bulk-mode load went: 'bulk' (set-based to the end), 'fallback' (bulk.run declined),
    'none' (bulk_plan returned None) or 'rejected' (bulk_plan raised FileRejected)."""

    def __init__(self, monkeypatch):
        self.taken: list[str] = []
        plan, run = hr_payroll_csv.bulk_plan, bulk.run

        def traced_plan(path, ctx):
            try:
                result = plan(path, ctx)
            except FileRejected:
                self.taken.append("rejected")
                raise
            if result is None:
                self.taken.append("none")
            return result

        def traced_run(*args, **kwargs):
            try:
                result = run(*args, **kwargs)
            except bulk.BulkFallback:
                self.taken.append("fallback")
                raise
            self.taken.append("bulk")
            return result

        monkeypatch.setattr(hr_payroll_csv, "bulk_plan", traced_plan)
        monkeypatch.setattr(bulk, "run", traced_run)


def _ingest(env, mode: str, path: Path, period: str = PERIOD) -> dict:
    url = env["urls"][mode]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WAREHOUSE_URL", url)
        mp.setenv("TRIVSEL_BULK_FROM_BYTES", MODES[mode])
        route = Route(mp) if mode == "bulk" else None
        with psycopg.connect(url, autocommit=True) as conn:
            out = loading.ingest_file(conn, path, env["muni"], "hr_absence", period, run_id="test", key=KEY)
            did = out.delivery_id
            status = conn.execute("select status, reason, rows_loaded from audit.delivery where delivery_id = %s",
                                  (did,)).fetchone()
            raw = conn.execute(
                "select source_row, employee_pseudonym, unit_text, month_start, absence_code, absence_text, "
                "absence_hours, contractual_hours, fte, municipality_code, period from raw.hr_payroll_absence "
                "where delivery_id = %s order by source_row", (did,)).fetchall()
            issues = conn.execute(
                "select row_number, column_name, check_name, reason, value from quarantine.delivery_issue "
                "where delivery_id = %s order by ctid", (did,)).fetchall()
    return {"outcome": (out.status, out.rows, out.reason), "status": status, "raw": raw, "issues": issues,
            "route": route.taken if route else None}


def both(env, path: Path, period: str = PERIOD) -> dict:
    """Load path by both routes and assert equal results; return the bulk-mode result."""
    fast = _ingest(env, "bulk", path, period)
    slow = _ingest(env, "python", path, period)
    assert fast["issues"] == slow["issues"]
    assert fast["raw"] == slow["raw"]
    assert fast["status"] == slow["status"]
    assert fast["outcome"] == slow["outcome"]
    return fast


_counter = iter(range(1, 10_000))


def deliver(env, lines: list[str], encoding: str = "cp1252", eol: str = "\r\n", raw: bytes | None = None) -> Path:
    folder = env["inbox"] / "169" / "hr_absence" / PERIOD
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"fravaer_{PERIOD}_{next(_counter):04d}.csv"
    path.write_bytes(raw if raw is not None else (eol.join(lines) + eol).encode(encoding))
    return path


def _clear_numbers_absent(url: str, numbers: list[str]) -> None:
    with psycopg.connect(url) as conn:
        tables = [r[0] for r in conn.execute(
            "select table_name from information_schema.tables where table_schema = 'raw'")]
        for table in tables:
            text = " ".join(str(r) for r in conn.execute(f'select * from raw."{table}"'))
            for number in numbers:
                assert number not in text, (table, number)


# ------------------------------------------------------------------------------------------ tests


def test_good_generated_file_loads_set_based(env, caplog):
    m = Muni("169", "Høje-Taastrup", 1.0, ("Vestervænget fløj A", "VV fløj B", "vestervænget nat", "VV NATTEVAGT"),
             "ohs_registry_export")
    gen = env["inbox"] / "gen"
    path, rows = write_absence(gen, m, PERIOD, 400, random.Random(7))
    target = env["inbox"] / "169" / "hr_absence" / PERIOD / path.name
    target.parent.mkdir(parents=True, exist_ok=True)
    path.replace(target)
    with caplog.at_level(logging.INFO, logger="trivsel.loading"):
        fast = both(env, target)
    assert fast["route"] == ["bulk"]
    assert "loaded set-based" in caplog.text
    assert fast["status"][0] == "loaded" and fast["status"][2] == rows == len(fast["raw"])
    numbers = [f"{169 * 1_000_000 + k + 1:09d}" for k in range(400)]
    for url in env["urls"].values():
        _clear_numbers_absent(url, numbers)


def test_danish_units_aliases_quotes_and_whitespace(env):
    nbsp = "\xa0"
    path = deliver(env, [
        "Årsværk ; Måned;Enhed;Medarbejdernr;Fraværskode;Fraværstekst;Fraværstimer;Normtimer",  # another order
        "1,00;2014-01;Vestervænget fløj A;004711;SYG;Egen sygdom;14,80;160,33",
        f" 1,00 ;201401; VV FLØJ B ; 004712 ;\tbarnsyg\t; Barn syg ;7,40{nbsp};160,33",
        '0,81;2014-01;"vestervænget nat";004713;"";"";0,00;129,87',
        '1;2014-01;VV nattevagt;"004714";DELSYG;"Delvis ""sygemeldt""; rest";0.74;0.160,50',
        "1,00;2014-01;VV fløj A;4715;OEVRIG;Øvrigt fravær;0 7,5;160.33",
        f"{nbsp};{nbsp} ; ;;;;;",  # nothing but whitespace: skipped by the parser
        ";;;;;;;",
        "0,5;2014-01;VV fløj A;0;;;-0;80",
        "1,00;2014-01;VV fløj A;47\\11\\N;SYG;Egen sygdom;7,40;160,33",  # COPY escapes in an employee number
    ])
    fast = both(env, path)
    assert fast["route"] == ["bulk"]
    assert fast["status"][0] == "loaded", fast["status"]
    assert len(fast["raw"]) == 7


ROW_PROBLEMS = [
    HEADER,
    "004711;VV fløj A;2014-01;SYG;Egen sygdom;14,80;160,33;1,00",
    ";VV fløj A;2014-01;SYG;Egen sygdom;14,80;160,33;1,00",                 # empty employee
    "004712;Ukendt fløj;2014-01;SYG;Egen sygdom;14,80;160,33;1,00",         # unknown unit
    "004713;Plejecenter Ærø's \\hus;2014-01;SYG;;1;160,33;1,00",            # unknown unit, repr quoting
    "004714;VV fløj A;2014-13;SYG;;1;160,33;1,00",                          # month 13
    "004715;VV fløj A;14-01;SYG;;1;160,33;1,00",                            # not a month
    "004716;VV fløj A;2014/01;SYG;;1;160,33;1,00",
    "004717;VV fløj A;2013-12;SYG;;1;160,33;1,00",                          # another period
    "004718;VV fløj A;201402;SYG;;1;160,33;1,00",
    "004719;VV fløj A;2014-01;SYG;;abc;160,33;1,00",                        # not a number
    "004720;VV fløj A;2014-01;SYG;;1,2,3;1.23;1.2345",
    "004721;VV fløj A;2014-01;SYG;;-5,00;160,33;1,00",                      # negative
    "004722;VV fløj A;2014-01;SYG;;7,40;-160,33;-1",
    "004723;VV fløj A;2014-01;SYG;;0800,00;1.000,00;2,5",                      # absurd, three times
    "004724;VV fløj A;2014-01;SYG;;744,01;744;2,00",
    "004725;VV fløj A;2014-01;;;7,40;160,33;1,00",                          # empty code with hours
    "004726;VV fløj A;2014-01;;;0,00;160,33;1,00",
    "004727;VV fløj A;2014-01;;;-1;160,33;1,00",
    "004728;VV fløj A;2014-01;;;x;160,33;1,00",
    "004729;VV fløj A;2014-01;ferie;Ferie;7,40;160,33;1,00",                # unknown code
    "004730;VV fløj A;2014-01;straße;;7,40;160,33;1,00",                    # upper() gives STRASSE
    "4711;VV fløj A;2014-01;syg;Egen sygdom;7,40;160,33;1,00",              # duplicate of row 2 (same pseudonym)
    "004711;VV fløj A;2014-01;BARNSYG;Barn syg;7,40;150,00;1,00",           # denominators differ from row 2
    "004711;VV fløj A;201401;BARNSYG;Barn syg;7,40;150,00;1,00",            # another month text: first again
    "004726;VV fløj A;2014-01;;;0;160,330;1",                               # duplicate empty code; same values
    "004731;Ukendt;2099-99;FERIE;;-1;x;3",                                  # everything at once
    "004731;Ukendt;2099-99;FERIE;;-1;x;3",
    "004732;VV fløj A;2014-01;SYG;;1;x;1,00",                               # invalid contractual: no first
    "004732;VV fløj A;2014-01;DELSYG;;1;100;1,00",                          # first valid denominators
    "004732;VV fløj A;2014-01;NEDSAT;;1;100,0;0,9",                         # differ from row 30
    " ;Ukendt;x;FERIE;;-1;x;3",                                             # empty employee: no dup checks
    " ;Ukendt;x;FERIE;;-1;x;3",
    "0;VV fløj A;2014-01;SYG;;1;100;1",
    "000;VV fløj A;2014-01;SYG;;1;100;1",                                   # same pseudonym as '0'
    "004733; ;2014-01;SYG;;1;100;1",                                        # empty unit
    "004734;VV fløj A;2014-01;SYG;;1 000;1 000,5;0 ,5",                     # spaces inside numbers
]


def test_each_row_problem(env):
    fast = both(env, deliver(env, ROW_PROBLEMS))
    assert fast["route"] == ["bulk"]
    assert fast["status"][0] == "quarantined"
    reasons = " | ".join(i[3] for i in fast["issues"])
    for needle in ("empty employee number", "unknown unit 'Ukendt fløj'", "not a month", "is not the delivery's",
                   "not a number", "negative Normtimer", "absurd Fraværstimer 800.00", "absurd Normtimer 1000",
                   "empty absence code with 7,40", "unknown absence code 'FERIE'", "'STRASSE'",
                   "as row 2 (duplicate", "differ from row 2 ", "differ from row 30 "):
        assert needle in reasons, needle


def test_ambiguous_separators_rejected_with_row_and_column(env):
    """'0.740' in a decimal-comma column was loaded as 740 hours: a single '.' before three digits (no ',')
    is 0.74 or 740, so both paths reject it with its row and column; unambiguous forms still load."""
    path = deliver(env, [
        HEADER,
        "004711;VV fløj A;2014-01;SYG;Egen sygdom;0.740;160,33;1,00",    # the case found: 740 hours
        "004712;VV fløj A;2014-01;SYG;Egen sygdom;7,40;1.600;1,00",      # 1600 or 1.6 contractual hours
        "004713;VV fløj A;2014-01;SYG;Egen sygdom;7,40;160,33;-0.500",   # FTE
        "004714;VV fløj A;2014-01;SYG;Egen sygdom;0,740;0.160,00;0.5",   # unambiguous: loads
    ])
    fast = both(env, path)
    assert fast["route"] == ["bulk"]
    assert fast["status"][0] == "quarantined"
    ambiguous = [(i[0], i[1], i[4]) for i in fast["issues"] if i[3].startswith("ambiguous number")]
    assert ambiguous == [(2, "Fraværstimer", "0.740"), (3, "Normtimer", "1.600"), (4, "Årsværk", "-0.500")]
    assert [i for i in fast["issues"] if i[0] == 5] == []
    assert "row 2 column Fraværstimer: ambiguous number" in fast["status"][1]


def test_more_issues_than_the_cap(env):
    lines = [HEADER] + [f"{k:06d};Ukendt;2014-01;SYG;;x;160,33;1,00" for k in range(700)]
    fast = both(env, deliver(env, lines))
    assert fast["route"] == ["bulk"]
    assert len(fast["issues"]) == 1000


@pytest.mark.parametrize("case", ["utf8", "utf8_later_row", "bom", "comma", "missing", "extra", "undefined_byte"])
def test_file_level_rejections(env, case):
    good = ["004711;VV fløj A;2014-01;SYG;Egen sygdom;14,80;160,33;1,00",
            "004712;VV fløj B;2014-01;;;0,00;129,87;0,81"]
    if case == "utf8":
        path = deliver(env, [HEADER, *good], encoding="utf-8")
    elif case == "utf8_later_row":
        raw = ("\r\n".join([HEADER, good[0]]) + "\r\n").encode("cp1252") + (good[1] + "\r\n").encode("utf-8")
        path = deliver(env, [], raw=raw)
    elif case == "bom":
        path = deliver(env, [], raw=b"\xef\xbb\xbf" + ("\r\n".join([HEADER, *good]) + "\r\n").encode("cp1252"))
    elif case == "comma":
        path = deliver(env, [HEADER.replace(";", ","), *(g.replace(";", ",") for g in good)])
    elif case == "missing":
        path = deliver(env, [HEADER.rsplit(";", 1)[0], *(g.rsplit(";", 1)[0] for g in good)])
    elif case == "extra":
        path = deliver(env, [HEADER + ";Note", *(g + ";x" for g in good)])
    else:
        raw = ("\r\n".join([HEADER, *good]) + "\r\n").encode("cp1252").replace(b"129,87", b"129\x81,87", 1)
        path = deliver(env, [], raw=raw)
    fast = both(env, path)
    assert fast["status"][0] == "quarantined"
    assert fast["route"] == (["none"] if case in ("utf8_later_row", "undefined_byte") else ["rejected"])


@pytest.mark.parametrize("case", ["blank_line", "short_row", "long_row", "stray_quote", "quoted_newline",
                                  "lf_and_crlf", "year_zero", "header_only", "lf_only"])
def test_what_copy_cannot_read_alike_falls_back(env, case):
    good = ["004711;VV fløj A;2014-01;SYG;Egen sygdom;14,80;160,33;1,00",
            "004712;VV fløj B;2014-01;;;0,00;129,87;0,81"]
    expected = "fallback"
    if case == "blank_line":
        lines = [HEADER, good[0], "", good[1]]
    elif case == "short_row":
        lines = [HEADER, *good, "004713;VV fløj A;2014-01;;;0,00"]
    elif case == "long_row":
        lines = [HEADER, *good, "004713;VV fløj A;2014-01;;;0,00;129,87;0,81;extra"]
    elif case == "stray_quote":
        lines, expected = [HEADER, *good, '004713;VV fløj A;2014-01;SYG;Egen "sygdom";7,40;129,87;0,81'], "none"
    elif case == "quoted_newline":
        lines, expected = [HEADER, *good, '004713;VV fløj A;2014-01;SYG;"Egen\r\nsygdom";7,40;129,87;0,81'], "none"
    elif case == "lf_and_crlf":
        path = deliver(env, [], raw=("\r\n".join([HEADER, good[0]]) + "\n" + good[1] + "\n").encode("cp1252"))
        lines = None
    elif case == "year_zero":
        lines = [HEADER, *good, "004713;VV fløj A;0000-01;;;0,00;129,87;0,81"]
    elif case == "header_only":
        lines, expected = [HEADER], "bulk"
    else:
        lines, expected = [HEADER, *good], "bulk"
    if lines is not None:
        path = deliver(env, lines, eol="\n" if case == "lf_only" else "\r\n")
    fast = both(env, path)
    assert fast["route"] == [expected]


def test_plan_checks_the_header_like_the_parser(tmp_path):
    path = tmp_path / "fravaer_2014-01.csv"
    path.write_bytes(b"")
    ctx = DeliveryContext("169", PERIOD, path.name, pseudonym_key=KEY)
    with pytest.raises(FileRejected, match="empty"):
        hr_payroll_csv.bulk_plan(path, ctx)
    path.write_bytes(("Enhed;" + HEADER + "\r\n").encode("cp1252"))
    assert hr_payroll_csv.bulk_plan(path, ctx) is None  # a column twice: the parser takes it
    path.write_bytes((HEADER + "\r\n").encode("cp1252"))
    assert hr_payroll_csv.bulk_plan(path, DeliveryContext("169", PERIOD, path.name)) is None  # no key
