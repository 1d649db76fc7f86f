"""The sample generator: deterministic, in the inbox layout, parsable without issues, Odense absent."""

from __future__ import annotations

import hashlib

from trivsel.samples import absence
from trivsel.sources import get_scheme

SCHEME_BY_PREFIX = (("fravaer_", "hr_payroll_csv"), ("sygefravaer_aar_", "hr_unit_year_summary"),
                    ("sygefravaer_", "hr_unit_workbook"))


def _scheme(name: str) -> str:
    return next(s for prefix, s in SCHEME_BY_PREFIX if name.startswith(prefix))


def test_layout_and_determinism(tmp_path):
    a = absence.generate(tmp_path / "a")
    b = absence.generate(tmp_path / "b")
    rel = sorted(str(p.relative_to(tmp_path / "a")) for p in a)
    assert rel == sorted(str(p.relative_to(tmp_path / "b")) for p in b)
    for pa in a:
        pb = tmp_path / "b" / pa.relative_to(tmp_path / "a")
        assert hashlib.sha256(pa.read_bytes()).digest() == hashlib.sha256(pb.read_bytes()).digest(), pa
    assert all(p.parts[-3] == "hr_absence" for p in a)
    assert not any(p.parts[-4] == "461" for p in a)  # Odense delivers nothing
    per_key = [(p.parts[-4], p.parts[-2]) for p in a]
    assert len(per_key) == len(set(per_key))  # one file per municipality and period
    assert {p.parts[-2] for p in a} == {"2012-12", "2013-12", "2014-01", "2014-02", "2014-03"}


def test_samples_parse_cleanly(tmp_path, make_ctx):
    for path in absence.generate(tmp_path):
        code, period = path.parts[-4], path.parts[-2]
        ctx = make_ctx(code, period, path.name)
        rows = list(get_scheme(_scheme(path.name)).parse(path, ctx))
        assert ctx.issues == [], (path, ctx.issues)
        assert rows, path


def test_payroll_sample_has_employees_without_absence_and_all_codes(tmp_path, make_ctx):
    paths = [p for p in absence.generate(tmp_path) if p.name.startswith("fravaer_")]
    codes = set()
    for path in paths:
        ctx = make_ctx("169", path.parts[-2], path.name)
        codes |= {row[4] for _, row in get_scheme("hr_payroll_csv").parse(path, ctx)}
        assert "Medarbejdernr" in path.read_bytes().decode("cp1252")
    assert None in codes and {"SYG", "BARNSYG"} <= codes
