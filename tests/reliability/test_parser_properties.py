"""Property-based tests over every registered scheme's parser (no database).

Any input, whether random bytes or a mutated valid sample, either parses into rows that fit the scheme's
raw tables, or is rejected with a reason (FileRejected or ctx.reject issues). Never another exception.
"""

from __future__ import annotations

import io
import tempfile
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trivsel.config import load_config
from trivsel.sources import all_schemes
from trivsel.sources.base import DeliveryContext, FileRejected, RowIssue

SCHEMES = sorted(all_schemes())
KEY = b"property-test-key-not-a-secret-5b2d8e4f"
PERIOD_BY_CADENCE = {"monthly": "2014-01", "yearly": "2013-12", "wave": "2012-05"}
SETTINGS = settings(max_examples=15, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.data_too_large])

TYPE_CHECKS = {
    "text": (str,),
    "integer": (int,),
    "bigint": (int,),
    "smallint": (int,),
    "numeric": (Decimal, int, float),
    "double precision": (float, int, Decimal),
    "real": (float, int, Decimal),
    "date": (date,),
    "timestamptz": (datetime,),
    "timestamp": (datetime,),
    "boolean": (bool,),
}

SPECIAL_VALUES = ["", " ", "-1", "-0,5", "0", "99999999999999999999", "1e400", "NaN", "inf", "2013-02-30",
                  "31-12-1899", "9999-12-31", "Ej oplyst", "(19,78)", "7,00/(10,24)", "=HYPERLINK(\"http://x\",\"y\")",
                  "\x00", '"', ";", "æøå", "1.234,50", "\u2212 5", "Ja", "Nej", "x" * 300]


@cache
def _samples() -> dict[str, tuple[Path, str, str]]:
    """scheme -> (a sample file, municipality code, period), from trivsel.samples if the generators exist."""
    import importlib

    root = Path(tempfile.mkdtemp(prefix="trivsel-prop-samples-"))
    for domain in ("survey", "absence", "incidents"):
        try:
            importlib.import_module(f"trivsel.samples.{domain}").generate(root)
        except ModuleNotFoundError:
            continue
    config = load_config()
    found: dict[str, tuple[Path, str, str]] = {}
    for path in sorted(root.glob("*/*/*/*")):
        code, source, period = path.parts[-4], path.parts[-3], path.parts[-2]
        try:
            rule = config.municipality(code).sources[source].scheme_for(path.name)
        except Exception:  # noqa: BLE001 - a sample for an unregistered municipality/source
            continue
        if rule and rule.scheme not in found:
            found[rule.scheme] = (path, code, period)
    return found


def _context_for(scheme_name: str, file_name: str) -> DeliveryContext:
    sample = _samples().get(scheme_name)
    config = load_config()
    if sample:
        _, code, period = sample
        muni = config.municipality(code)
    else:
        muni, period = None, None
        for m in config.municipalities:
            for s in m.sources.values():
                if any(r.scheme == scheme_name for r in s.schemes):
                    muni, period = m, PERIOD_BY_CADENCE[s.cadence]
        if muni is None:
            pytest.skip(f"no municipality uses {scheme_name}")
    return DeliveryContext(municipality_code=muni.code, period=period, file_name=file_name,
                           municipality=muni.raw, pseudonym_key=KEY)


def check_parse(scheme_name: str, data: bytes, suffix: str) -> str:
    """Parse data as the scheme; assert the contract. Returns 'rows', 'rejected' or 'issues'."""
    module = all_schemes()[scheme_name]
    tables = {t.name: t for t in module.scheme.tables}
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"delivery{suffix}"
        path.write_bytes(data)
        ctx = _context_for(scheme_name, path.name)
        try:
            for table, row in module.parse(path, ctx):
                assert table in tables, f"{scheme_name} yielded a row for undeclared table {table!r}"
                cols = tables[table].columns
                assert isinstance(row, tuple) and len(row) == len(cols), \
                    f"{scheme_name}: {table} row has {len(row)} values, the table {len(cols)} columns: {row!r}"
                assert isinstance(row[0], int) and row[0] >= 1, f"source_row must be a line number: {row[0]!r}"
                for col, value in zip(cols, row, strict=True):
                    if value is None:
                        continue
                    allowed = TYPE_CHECKS.get(col.type.split("(")[0].strip().lower())
                    if allowed:
                        assert isinstance(value, allowed) and not (
                            col.type in ("integer", "bigint", "smallint") and isinstance(value, bool)), \
                            f"{scheme_name}: {table}.{col.name} ({col.type}) got {type(value).__name__} {value!r}"
        except FileRejected as exc:
            assert exc.reason and isinstance(exc.reason, str)
            return "rejected"
        assert all(isinstance(i, RowIssue) and i.reason for i in ctx.issues)
        return "issues" if ctx.issues else "rows"


def _suffix(scheme_name: str) -> str:
    return (all_schemes()[scheme_name].scheme.suffixes or (".csv",))[0]


# Parser crashes found by these tests (the loader turns them into a 'parser_error' quarantine, so no
# delivery is lost; the scheme should raise FileRejected instead). Empty: the reported ones are fixed.
KNOWN_CRASHES: dict[str, str] = {}


def _xfail_known(names):
    return [pytest.param(n, marks=pytest.mark.xfail(reason=KNOWN_CRASHES[n], strict=True))
            if n in KNOWN_CRASHES else n for n in names]


@pytest.mark.parametrize("scheme_name", SCHEMES)
@SETTINGS
@given(data=st.binary(max_size=3000))
def test_any_bytes_parse_or_are_rejected(scheme_name, data):
    check_parse(scheme_name, data, _suffix(scheme_name))


def _mutate_text(data: bytes, draw) -> bytes:
    lines = data.split(b"\n")
    for op in draw(st.lists(st.sampled_from(["field", "field", "field", "truncate", "dupline", "dropline",
                                             "flip", "insert", "swapsep", "header"]), min_size=1, max_size=4)):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        if op in ("field", "header"):
            i = 0 if op == "header" else i
            fields = lines[i].split(b";")
            j = draw(st.integers(0, len(fields) - 1))
            value = draw(st.one_of(st.sampled_from(SPECIAL_VALUES), st.text(max_size=12)))
            fields[j] = value.encode(draw(st.sampled_from(["cp1252", "utf-8"])), errors="replace")
            lines[i] = b";".join(fields)
        elif op == "truncate":
            joined = b"\n".join(lines)
            lines = joined[: draw(st.integers(0, len(joined)))].split(b"\n")
        elif op == "dupline":
            lines.insert(i, lines[i])
        elif op == "dropline":
            del lines[i]
        elif op == "flip" and lines[i]:
            k = draw(st.integers(0, len(lines[i]) - 1))
            b = bytearray(lines[i])
            b[k] = draw(st.integers(0, 255))
            lines[i] = bytes(b)
        elif op == "insert":
            lines.insert(i, draw(st.binary(max_size=40)))
        elif op == "swapsep":
            lines[i] = lines[i].replace(b";", draw(st.sampled_from([b",", b"\t", b";;", b""])))
    return b"\n".join(lines)


def _mutate_workbook(data: bytes, draw) -> bytes:
    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(data))
    for op in draw(st.lists(st.sampled_from(["cell", "cell", "cell", "delete_row", "rename_sheet", "blank_header"]),
                            min_size=1, max_size=4)):
        ws = wb.worksheets[draw(st.integers(0, len(wb.worksheets) - 1))]
        r = draw(st.integers(1, (ws.max_row or 1) + 1))
        c = draw(st.integers(1, (ws.max_column or 1) + 1))
        if op == "cell":
            ws.cell(r, c).value = draw(st.one_of(
                st.none(), st.sampled_from(SPECIAL_VALUES[:-1]).filter(lambda v: "\x00" not in v),
                st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=12),
                st.integers(-10**12, 10**12), st.floats(allow_nan=False, allow_infinity=False),
                st.dates(min_value=date(1900, 3, 1)), st.booleans()))
        elif op == "delete_row":
            ws.delete_rows(r)
        elif op == "rename_sheet":
            ws.title = draw(st.sampled_from(["Ark1", "Sheet", ws.title.upper(), "x"]))
        elif op == "blank_header":
            ws.cell(1, c).value = None
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


@pytest.mark.parametrize("scheme_name", _xfail_known(SCHEMES))
@SETTINGS
@given(data=st.data())
def test_mutated_samples_parse_or_are_rejected(scheme_name, data):
    sample = _samples().get(scheme_name)
    if sample is None:
        pytest.skip(f"no sample delivery for {scheme_name} (trivsel.samples)")
    path = sample[0]
    raw = path.read_bytes()
    if path.suffix.lower() == ".xlsx":
        mutated = _mutate_workbook(raw, data.draw) if data.draw(st.booleans()) else _mutate_text(raw, data.draw)
    else:
        mutated = _mutate_text(raw, data.draw)
    check_parse(scheme_name, mutated, path.suffix.lower())


@pytest.mark.parametrize("scheme_name", SCHEMES)
def test_the_unmutated_sample_parses_into_rows(scheme_name):
    sample = _samples().get(scheme_name)
    if sample is None:
        pytest.skip(f"no sample delivery for {scheme_name} (trivsel.samples)")
    assert check_parse(scheme_name, sample[0].read_bytes(), sample[0].suffix.lower()) == "rows"


def _payroll_with_bare_cr() -> tuple[str, bytes, str]:
    path = _samples()["hr_payroll_csv"][0]
    lines = path.read_bytes().split(b"\n")
    lines[1] = lines[1].replace(b";", b"\r", 1)
    return "hr_payroll_csv", b"\n".join(lines), ".csv"


def _workbook_with_corrupt_sheet() -> tuple[str, bytes, str]:
    import zipfile

    path = _samples()["survey_workbook_xlsx"][0]
    src = zipfile.ZipFile(path)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.startswith("xl/worksheets/sheet1"):
                data = data[: len(data) // 2]  # a sheet cut off mid-XML
            dst.writestr(info, data)
    return "survey_workbook_xlsx", out.getvalue(), ".xlsx"


@pytest.mark.parametrize("make", [_payroll_with_bare_cr, _workbook_with_corrupt_sheet],
                         ids=["hr_payroll_csv-bare-CR", "survey_workbook_xlsx-truncated-sheet-xml"])
def test_reported_parser_crash_cases(make):
    """The exact inputs reported to the lead: the scheme modules now reject them (FileRejected or issues)."""
    try:
        scheme_name, data, suffix = make()
    except KeyError as exc:
        pytest.skip(f"no sample for {exc}")
    assert check_parse(scheme_name, data, suffix) in ("rejected", "issues")
