"""survey_respondent_csv set-based (bulk_plan) against its Python parser: the same files through
trivsel.loading.ingest_file twice, once with TRIVSEL_BULK_FROM_BYTES=0 (bulk) and once with =off (parser), each
into a throwaway database of its own, give the same raw rows, the same quarantine issues and the same statuses."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import psycopg
import pytest
import throwaway_db
from _survey_helpers import seed

from trivsel import loading
from trivsel.bench import generate
from trivsel.config import parse_config
from trivsel.sources import bulk
from trivsel.sources import survey_respondent_csv as scheme_module

CODE = "607"
PERIOD = "2012-05"
UNITS = ("Ungeteam", "Ny vej", "Hjemmeplejen Nord")
DATABASES = {"bulk": "survey_bulk_on", "parser": "survey_bulk_off"}
ITEMS = [r["item_code"] for r in seed("survey_items.csv")]
SCALES = {r["item_code"]: r["scale"] for r in seed("survey_items.csv")}
LABELS: dict[str, list[str]] = {}
for _r in seed("survey_scale_labels.csv"):
    LABELS.setdefault(_r["scale"], []).append(_r["label_da"])
HEADER = ["respondent", "enhed", "maaling", *ITEMS]


@pytest.fixture(scope="module")
def env(warehouse_url, tmp_path_factory, monkeypatch_module):
    urls = {mode: throwaway_db.create(warehouse_url, db) for mode, db in DATABASES.items()}
    monkeypatch_module.setenv("TRIVSEL_INBOX", str(tmp_path_factory.mktemp("inbox")))
    monkeypatch_module.setenv("TRIVSEL_ARCHIVE", str(tmp_path_factory.mktemp("archive")))
    config = parse_config({"municipalities": [{
        "code": CODE, "name": "Testkommune", "units": [{"name": u} for u in UNITS],
        "sources": {"survey": {"cadence": "wave", "schemes": [
            {"scheme": "survey_respondent_csv", "files": "besvarelser*.csv"}]}},
    }]})
    yield {"urls": urls, "muni": config.municipality(CODE), "files": tmp_path_factory.mktemp("files")}
    monkeypatch_module.undo()
    throwaway_db.drop(warehouse_url, *DATABASES.values())


def ingest(env, mode: str, path: Path, monkeypatch, spy: list):
    """ingest_file in one mode; returns (outcome, raw rows, issues, audit row)."""
    url = env["urls"][mode]
    monkeypatch.setenv("WAREHOUSE_URL", url)
    monkeypatch.setenv("TRIVSEL_BULK_FROM_BYTES", "0" if mode == "bulk" else "off")
    real_run = bulk.run

    def run(*args, **kwargs):
        result = real_run(*args, **kwargs)  # a BulkFallback passes through: not recorded
        spy.append(path.name)
        return result

    monkeypatch.setattr(bulk, "run", run)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            out = loading.ingest_file(conn, path, env["muni"], "survey", PERIOD, run_id="test")
            # raw keeps one row per respondent; compared in the long shape staging unnests it to
            raw = conn.execute(
                "select source_row, respondent_id, unit_name, wave, a.item_code, a.answer_label, municipality_code, "
                "period from raw.survey_response_csv cross join lateral jsonb_each_text(answers) as "
                "a(item_code, answer_label) where delivery_id = %s", (out.delivery_id,)).fetchall()
            issues = conn.execute(
                "select row_number, column_name, check_name, reason, value from quarantine.delivery_issue "
                "where delivery_id = %s", (out.delivery_id,)).fetchall()
            audit = conn.execute("select status, reason, rows_loaded from audit.delivery where delivery_id = %s",
                                 (out.delivery_id,)).fetchone()
    finally:
        monkeypatch.setattr(bulk, "run", real_run)
    return out, sorted(raw, key=repr), sorted(issues, key=repr), audit


def both(env, path: Path, monkeypatch, *, bulk_decides: bool):
    """Load `path` both ways; assert equality; return the parser's (outcome, raw, issues)."""
    spy: list[str] = []
    b_out, b_raw, b_issues, b_audit = ingest(env, "bulk", path, monkeypatch, spy)
    assert (path.name in spy) is bulk_decides, "bulk path ran" if spy else "bulk path did not run"
    p_out, p_raw, p_issues, p_audit = ingest(env, "parser", path, monkeypatch, spy)
    assert p_out.status == b_out.status, (p_out.reason, b_out.reason)
    assert p_out.reason == b_out.reason
    assert p_out.rows == b_out.rows
    assert p_out.issues == b_out.issues  # same order, as the parser found them
    assert p_issues == b_issues
    assert p_audit == b_audit
    assert len(p_raw) == len(b_raw)
    assert p_raw == b_raw
    return p_out, p_raw, p_issues


def label(code: str, k: int) -> str:
    labels = LABELS[SCALES[code]]
    return labels[k % len(labels)]


def answer_rows(n: int, *, start: int = 1, unit: str = "Ungeteam", wave: str = PERIOD, salt: int = 0):
    return [[str(start + i), UNITS[i % 2] if unit is None else unit, wave,
             *[label(c, i + j + salt) for j, c in enumerate(ITEMS)]] for i in range(n)]


def write(env, name: str, rows: list[list[str]], *, delimiter: str = ";", bom: bool = False, eol: str = "\n",
          header: list[str] | None = None, raw_lines: dict[int, str] | None = None) -> Path:
    """Write a file; raw_lines puts a line verbatim at an index of the data lines."""
    lines = [delimiter.join(header or HEADER)]
    for i, row in enumerate(rows):
        if raw_lines and i in raw_lines:
            lines.append(raw_lines[i])
        lines.append(delimiter.join(row))
    path = env["files"] / name
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + (eol.join(lines) + eol).encode("utf-8"))
    return path


# --- good files -----------------------------------------------------------------------------------


def test_whitespace_set_is_pythons():
    assert scheme_module.PY_WHITESPACE == "".join(chr(c) for c in range(0x110000) if chr(c).isspace())


def test_bench_file_loads_set_based(env, monkeypatch, caplog):
    caplog.set_level("INFO", logger="trivsel")
    folder = env["files"] / "bench"
    m = generate.Muni(CODE, "Testkommune", 1.0, UNITS, "ohs_registry_export")
    (answers, _population), _ = generate.write_survey(folder, m, PERIOD, 300, random.Random(7),
                                                      generate._survey_labels())
    path = env["files"] / "besvarelser_bench.csv"
    shutil.copyfile(answers, path)
    out, raw, issues = both(env, path, monkeypatch, bulk_decides=True)
    assert out.status == "loaded", out.reason
    assert "loaded set-based" in caplog.text
    assert len(raw) == 300 * len(ITEMS) and not issues
    assert any(r[5] is None for r in raw), "the generator writes some blanks"


def test_bom_crlf_and_whitespace(env, monkeypatch):
    rows = answer_rows(6, unit=None, salt=1)
    rows[0][0] = "  17 \t"
    rows[1][1] = "\u00a0 Ny \t\u2003 vej  "  # normalises to a known unit
    rows[2][2] = f" {PERIOD}\u3000"
    rows[3][3] = "  " + LABELS[SCALES[ITEMS[0]]][0].replace(" ", " \u00a0 ") + " "
    rows[4][4:8] = ["", "  ", "\t", "\u00a0"]  # blanks: null labels
    rows[5][5] = "Ved\u2002ikke"
    path = write(env, "besvarelser_bom.csv", rows, bom=True, eol="\r\n")
    out, raw, _ = both(env, path, monkeypatch, bulk_decides=True)
    assert out.status == "loaded", out.reason
    assert {r[1] for r in raw} == {"17", *(str(i) for i in range(2, 7))}
    assert "Ny vej" in {r[2] for r in raw}


def test_comma_delimiter_with_quoted_labels(env, monkeypatch):
    rows = answer_rows(5, salt=2)
    quoted = [[f'"{v}"' if ("," in v or i == 3) else v for i, v in enumerate(row)] for row in rows]
    quoted[1][6] = '""'  # a quoted empty field: a blank answer
    quoted[2][7] = '"  Ved  ikke "'
    path = write(env, "besvarelser_comma.csv", quoted, delimiter=",")
    assert any("," in v for row in rows for v in row), "some labels hold commas (work_life, exposure)"
    out, raw, _ = both(env, path, monkeypatch, bulk_decides=True)
    assert out.status == "loaded", out.reason


def test_separator_only_lines_are_skipped(env, monkeypatch):
    rows = answer_rows(4, salt=3)
    path = write(env, "besvarelser_seps.csv", rows,
                 raw_lines={1: ";" * (len(HEADER) - 1), 3: "\u00a0;" + " ;" * (len(HEADER) - 2) + "\t"})
    out, raw, _ = both(env, path, monkeypatch, bulk_decides=True)
    assert out.status == "loaded", out.reason
    assert sorted({r[0] for r in raw}) == [2, 4, 5, 7]


# --- row problems -----------------------------------------------------------------------------------


def test_missing_respondent(env, monkeypatch):
    rows = answer_rows(4, salt=4)
    rows[1][0] = " "
    rows[2][0] = ""
    rows[2][1] = "Atlantis"  # not checked: the parser moves on after the respondent
    out, _, issues = both(env, write(env, "besvarelser_norespondent.csv", rows), monkeypatch, bulk_decides=True)
    assert out.status == "quarantined"
    assert [(i.row, i.column, i.reason, i.value) for i in out.issues] == [
        (3, "respondent", "respondent id is missing", None), (4, "respondent", "respondent id is missing", None)]


def test_repeated_respondent(env, monkeypatch):
    rows = answer_rows(6, salt=5)
    rows[2][0] = "1"
    rows[4][0] = " 1 "
    rows[4][1] = "Atlantis"
    rows[5][0] = "2"
    rows[3][0] = ""
    out, _, _ = both(env, write(env, "besvarelser_repeat.csv", rows), monkeypatch, bulk_decides=True)
    assert [(i.row, i.column, i.reason, i.value) for i in out.issues] == [
        (4, "respondent", "respondent id repeats line 2", "1"),
        (5, "respondent", "respondent id is missing", None),
        (6, "respondent", "respondent id repeats line 2", "1"),
        (7, "respondent", "respondent id repeats line 3", "2")]


def test_units(env, monkeypatch):
    rows = answer_rows(5, salt=6)
    rows[0][1] = "Atlantis"
    rows[1][1] = "  "
    rows[2][1] = "ungeteam"
    rows[3][1] = " Hjemmeplejen   Nord "  # fine after normalising
    rows[0][5] = "Nonsens"  # no label checks once the unit failed
    out, _, _ = both(env, write(env, "besvarelser_units.csv", rows), monkeypatch, bulk_decides=True)
    known = ", ".join(UNITS)
    assert [(i.row, i.column, i.reason, i.value) for i in out.issues] == [
        (2, "enhed", f"unknown unit (known: {known})", "Atlantis"),
        (3, "enhed", "unit is missing", ""),
        (4, "enhed", f"unknown unit (known: {known})", "ungeteam")]


def test_waves(env, monkeypatch):
    rows = answer_rows(7, salt=7)
    rows[0][2] = "2012-5"
    rows[1][2] = "2012-13"
    rows[2][2] = "2013-05"
    rows[3][2] = ""
    rows[4][2] = "\u0662\u0660\u0661\u0662-05"  # Arabic-Indic digits: Python's \d takes them
    rows[5][2] = "2012-05x"
    rows[6][1] = "Atlantis"
    rows[6][2] = "2012"  # both a unit and a wave issue, unit first
    out, _, _ = both(env, write(env, "besvarelser_waves.csv", rows), monkeypatch, bulk_decides=True)
    other = f"wave does not match the delivery's period {PERIOD}"
    assert [(i.row, i.column, i.reason) for i in out.issues] == [
        (2, "maaling", "wave is not YYYY-MM"), (3, "maaling", "wave is not YYYY-MM"), (4, "maaling", other),
        (5, "maaling", "wave is not YYYY-MM"), (6, "maaling", other), (7, "maaling", "wave is not YYYY-MM"),
        (8, "enhed", f"unknown unit (known: {', '.join(UNITS)})"), (8, "maaling", "wave is not YYYY-MM")]


def test_unknown_labels(env, monkeypatch):
    rows = answer_rows(4, salt=8)
    rows[0][3 + 5] = "Nonsens"
    rows[0][3 + 2] = " altid "
    rows[0][3 + 30] = "x" * 300  # the value is cut to 200 characters
    rows[2][3 + 1] = "Ja,  helt sikkert" if SCALES[ITEMS[1]] != "work_life" else "Meget tilfreds"
    rows[3][3 + 0] = LABELS["work_life"][0] if SCALES[ITEMS[0]] != "work_life" else LABELS["degree"][0]
    out, _, _ = both(env, write(env, "besvarelser_labels.csv", rows), monkeypatch, bulk_decides=True)
    assert [(i.row, i.column) for i in out.issues] == [
        (2, ITEMS[2]), (2, ITEMS[5]), (2, ITEMS[30]), (4, ITEMS[1]), (5, ITEMS[0])]
    assert out.issues[2].value == "x" * 200
    assert out.issues[0].reason == f"unknown answer label for scale {SCALES[ITEMS[2]]}"


def test_many_problems_in_one_file(env, monkeypatch):
    rows = answer_rows(40, unit=None, salt=9)
    rng = random.Random(11)
    for row in rows:
        r = rng.random()
        if r < 0.1:
            row[0] = ""
        elif r < 0.2:
            row[0] = str(rng.randint(1, 40))
        elif r < 0.3:
            row[1] = rng.choice(["Atlantis", "", " ny vej"])
        elif r < 0.4:
            row[2] = rng.choice(["2012-06", "2012/05", ""])
        if rng.random() < 0.3:
            row[3 + rng.randrange(len(ITEMS))] = rng.choice(["Nonsens", "Ofte?", "Ved ikke!"])
    out, _, issues = both(env, write(env, "besvarelser_many.csv", rows), monkeypatch, bulk_decides=True)
    assert out.status == "quarantined" and len(issues) > 10
    assert len({i.reason.split(" ")[0] for i in out.issues}) >= 3


# --- files the parser must read -----------------------------------------------------------------------


@pytest.mark.parametrize("name, raw_lines, bulk_decides", [
    ("blank", {2: ""}, False),
    ("whitespace-line", {4: "   "}, False),  # one field: COPY refuses it
    ("ragged-long", {1: ";".join(["99", "Ungeteam", PERIOD, *["" for _ in ITEMS], "extra"])}, False),
    ("ragged-short", {3: "98;Ungeteam;2012-05"}, False),
    ("quote-inside", {2: ";".join(["97", 'Unge"team', PERIOD, *["" for _ in ITEMS]])}, False),
    ("quote-after", {2: ";".join(["96", '"Unge"team', PERIOD, *["" for _ in ITEMS]])}, False),
    ("quoted-break", {2: ";".join(["95", '"Unge\nteam"', PERIOD, *["" for _ in ITEMS]])}, False),
    ("quoted-ok", {2: ";".join(['"94"', '"Ungeteam"', '"2012-05"', *['""' for _ in ITEMS]])}, True),
])
def test_odd_lines(env, monkeypatch, name, raw_lines, bulk_decides):
    rows = answer_rows(5, salt=len(name))
    path = write(env, f"besvarelser_{name}.csv", rows, raw_lines=raw_lines)
    out, _, _ = both(env, path, monkeypatch, bulk_decides=bulk_decides)
    if "ragged" in name:
        assert out.status == "quarantined" and "fields, the header has" in out.reason


def test_not_utf8(env, monkeypatch):
    rows = answer_rows(3, salt=12)
    path = write(env, "besvarelser_latin1.csv", rows)
    path.write_bytes(path.read_bytes().replace(b"Ungeteam", "Ungeteam\xe6".encode("latin-1"), 1))
    out, _, _ = both(env, path, monkeypatch, bulk_decides=False)
    assert out.status == "quarantined" and "not UTF-8" in out.reason


def test_not_utf8_in_the_header(env, monkeypatch):
    path = write(env, "besvarelser_latin1_header.csv", answer_rows(2, salt=13))
    path.write_bytes(path.read_bytes().replace(b"enhed", "enhed\xe6".encode("latin-1"), 1))
    out, _, _ = both(env, path, monkeypatch, bulk_decides=False)
    assert out.status == "quarantined" and "not UTF-8" in out.reason


@pytest.mark.parametrize("name, header", [
    ("missing", [c for c in HEADER if c != "enhed"]),
    ("unknown", [*HEADER, "9.9.9"]),
    ("duplicated", [*HEADER, ITEMS[0]]),
])
def test_header_problems(env, monkeypatch, name, header):
    rows = [row[: len(header)] + [""] * (len(header) - len(row)) for row in answer_rows(2, salt=14)]
    path = write(env, f"besvarelser_header_{name}.csv", rows, header=header)
    out, _, _ = both(env, path, monkeypatch, bulk_decides=False)
    assert out.status == "quarantined" and name in out.reason


def test_header_only(env, monkeypatch):
    path = write(env, "besvarelser_header_only.csv", [], bom=True)
    out, _, _ = both(env, path, monkeypatch, bulk_decides=True)
    assert out.status == "quarantined" and "no data rows" in out.reason


def test_more_issues_than_recorded(env, monkeypatch):
    rows = answer_rows(260, salt=15)
    for i, row in enumerate(rows):
        for j in range(4):
            row[3 + (i + 7 * j) % len(ITEMS)] = f"Nonsens {j}"
    out, _, issues = both(env, write(env, "besvarelser_over_limit.csv", rows), monkeypatch, bulk_decides=True)
    assert len(issues) == 1000  # DeliveryContext.max_issues: the same first thousand both ways
