"""One validation per table per batch (trivsel.validation.validate_batch, trivsel.validation_sql).

The raw suites compiled into SQL grouped by delivery_id must find, per delivery, what GX's own per-delivery
validation (validate_delivery) finds, with the same reason text: checked on deliveries written straight into
a throwaway database's raw tables, each expectation type failing and passing, a delivery with no rows, and
uniqueness that holds per delivery, not across the batch."""

from __future__ import annotations

import os
import sys
from datetime import date

import psycopg
import pytest
import throwaway_db
from psycopg.types.json import Jsonb

from trivsel import validation, validation_sql

DB = "gx_batch_sql"
CODE = "169"
PERIOD = "2014-03"
PARAMS = {"period": PERIOD, "municipality_code": CODE, "year": 2014, "unit_names": ["VV fløj A", "VV fløj B"]}
PSEUDO = "a" * 64


@pytest.fixture(scope="module")
def url(warehouse_url):
    yield throwaway_db.create(warehouse_url, DB)
    throwaway_db.drop(warehouse_url, DB)


_next = iter(range(1000, 100000))


def _insert(url: str, table: str, rows: list[dict]) -> int:
    """A new delivery_id with these rows in raw.<table> (municipality_code/period default to the test's)."""
    did = next(_next)
    with psycopg.connect(url, autocommit=True) as conn:
        for row in rows:
            row = {"delivery_id": did, "municipality_code": CODE, "period": PERIOD, **row}
            cols = ", ".join(f'"{c}"' for c in row)
            conn.execute(f"insert into raw.{table} ({cols}) values ({', '.join(['%s'] * len(row))})",
                         list(row.values()))
    return did


def _payroll(n: int = 3, **change) -> list[dict]:
    rows = [{"source_row": i + 2, "employee_pseudonym": f"{i:x}" * 64 if i < 10 else PSEUDO,
             "unit_text": "VV fløj A", "month_start": date(2014, 3, 1), "absence_code": "SYG",
             "absence_hours": 7.4, "contractual_hours": 160, "fte": 1} for i in range(n)]
    for i, values in change.items():
        rows[int(i[1:])].update(values)
    return rows


def _key(failures):
    return sorted((f.table, f.expectation, f.column, f.reason) for f in failures)


def _same_as_gx(url: str, table: str, dids: list[int], params=None) -> dict[int, list]:
    params = params or {d: PARAMS for d in dids}
    batch, timings = validation.validate_batch(url, {d: ([table], params[d]) for d in dids})
    assert [t.table for t in timings] == [table] and timings[0].deliveries == len(dids)
    for d in dids:
        assert _key(batch[d]) == _key(validation.validate_delivery(url, d, [table], params[d])), d
    return batch


def test_payroll_checks_attributed_per_delivery(url):
    good = _insert(url, "hr_payroll_absence", _payroll())
    bad = _insert(url, "hr_payroll_absence", _payroll(
        r0={"fte": 3}, r1={"absence_code": "syg!", "unit_text": None},
        r2={"employee_pseudonym": "not-a-pseudonym", "period": "2014-04"}))
    dup = _insert(url, "hr_payroll_absence", _payroll(r1={"employee_pseudonym": "0" * 64}))  # = row 0's key
    batch = _same_as_gx(url, "hr_payroll_absence", [good, bad, dup])
    assert batch[good] == []
    got = {(f.expectation, f.column): f for f in batch[bad]}
    assert set(got) == {("expect_column_values_to_be_between", "fte"),
                        ("expect_column_values_to_match_regex", "absence_code"),
                        ("expect_column_values_to_match_regex", "employee_pseudonym"),
                        ("expect_column_values_to_not_be_null", "unit_text"),
                        ("expect_column_values_to_be_in_set", "period")}
    assert got["expect_column_values_to_be_between", "fte"].first_row == 2
    assert got["expect_column_values_to_not_be_null", "unit_text"].first_row == 3
    assert "1 unexpected value(s)" in got["expect_column_values_to_be_in_set", "period"].reason
    assert [(f.expectation, f.first_row) for f in batch[dup]] == [("expect_compound_columns_to_be_unique", 2)]


def test_a_delivery_without_rows_fails_the_row_count(url):
    some = _insert(url, "hr_payroll_absence", _payroll())
    empty = next(_next)  # in the batch, no rows in the table
    batch = _same_as_gx(url, "hr_payroll_absence", [some, empty])
    assert batch[some] == []
    [f] = batch[empty]
    assert f.expectation == "expect_table_row_count_to_be_between" and "observed 0" in f.reason


def _registration(case_ids: list[str], **extra) -> list[dict]:
    return [{"source_row": i + 2, "case_id": c, "event_date": date(2014, 3, 3), "unit_label": "VV",
             "event_type": "Arbejdsulykke", "injury_type": "Traumatisk chok", "absence_label": "Med fravær",
             **extra} for i, c in enumerate(case_ids)]


def test_uniqueness_holds_per_delivery_not_across_the_batch(url):
    one = _insert(url, "ohs_registration", _registration(["A1", "A2"]))
    other = _insert(url, "ohs_registration", _registration(["A1", "A2"]))  # the same ids: another delivery
    twice = _insert(url, "ohs_registration", _registration(["B1", "B2", "B1"], event_type="Ulykke"))
    batch = _same_as_gx(url, "ohs_registration", [one, other, twice])
    assert batch[one] == [] and batch[other] == []
    got = {f.expectation: f for f in batch[twice]}
    assert set(got) == {"expect_column_values_to_be_unique", "expect_column_values_to_be_in_set"}
    assert got["expect_column_values_to_be_unique"].first_row == 2
    assert "2 unexpected value(s)" in got["expect_column_values_to_be_unique"].reason
    assert "3 unexpected value(s)" in got["expect_column_values_to_be_in_set"].reason


def test_column_pair_and_a_parameter_bound(url):
    row = {"source_row": 2, "year": 2014, "n_use_of_force": 5, "n_non_participant": 2, "note": None}
    good = _insert(url, "use_of_force_count", [row])
    missing = _insert(url, "use_of_force_count", [{**row, "n_non_participant": None}])  # ignored by the pair
    bad = _insert(url, "use_of_force_count", [{**row, "source_row": 3, "n_use_of_force": 1, "year": 2016}])
    batch = _same_as_gx(url, "use_of_force_count", [good, missing, bad])
    assert batch[good] == [] and batch[missing] == []
    assert {f.expectation for f in batch[bad]} == {"expect_column_pair_values_a_to_be_greater_than_b",
                                                   "expect_column_values_to_be_between"}
    assert all(f.first_row == 3 for f in batch[bad])


def test_unique_value_count_and_a_list_parameter(url):
    def answers(n_items: int, unit: str) -> list[dict]:
        return [{"source_row": 2, "respondent_id": "r1", "unit_name": unit, "wave": PERIOD,
                 "item_header": f"item {i}", "column_letter": "B", "answer_value": "x", "answer_code": 1}
                for i in range(n_items)]
    full = _insert(url, "survey_answer_xlsx", answers(36, "VV fløj A"))
    short = _insert(url, "survey_answer_xlsx", answers(35, "Ukendt enhed"))
    batch = _same_as_gx(url, "survey_answer_xlsx", [full, short])
    mine = {f.expectation for f in batch[short]}
    assert "expect_column_unique_value_count_to_be_between" in mine
    assert "expect_column_values_to_be_in_set" in mine  # unit_name not among the delivery's unit_names
    assert "expect_column_unique_value_count_to_be_between" not in {f.expectation for f in batch[full]}


def _responses(n: int, **change) -> list[dict]:
    """Rows of raw.survey_response_csv (one per respondent, answers as one JSON object)."""
    rows = [{"source_row": i + 2, "respondent_id": str(100 + i), "unit_name": "VV fløj A", "wave": PERIOD,
             "answers": Jsonb({"1.1.1": "Altid", "1.1.2": None, "7.4.1": "Nej"})} for i in range(n)]
    for i, values in change.items():
        rows[int(i[1:])].update(values)
    return rows


def test_survey_response_suite_checks_the_answers_object(url):
    """The wide survey rows (raw as delivered): the answer check over the object's pairs finds an unknown item
    key or label, per delivery, as GX's own validation of the delivery does; blank answers (null) pass."""
    good = _insert(url, "survey_response_csv", _responses(3))
    bad_label = _insert(url, "survey_response_csv", _responses(3, r1={"answers": Jsonb({"1.1.1": "I nogen grad"})}))
    bad_item = _insert(url, "survey_response_csv", _responses(2, r0={"answers": Jsonb({"9.9.9": "Altid"})}))
    repeated = _insert(url, "survey_response_csv", _responses(2, r1={"respondent_id": "100"}))
    batch = _same_as_gx(url, "survey_response_csv", [good, bad_label, bad_item, repeated])
    assert batch[good] == []
    assert [f.expectation for f in batch[bad_label]] == ["unexpected_rows_expectation"]
    assert [f.expectation for f in batch[bad_item]] == ["unexpected_rows_expectation"]
    assert [(f.expectation, f.column) for f in batch[repeated]] == [("expect_column_values_to_be_unique",
                                                                     "respondent_id")]


def test_not_in_set_unexpected_rows_and_fallback(url, monkeypatch):
    spec = {"name": "t", "expectations": [
        {"type": "expect_column_values_to_not_be_in_set", "kwargs": {"column": "case_id", "value_set": ["X"]}},
        {"type": "unexpected_rows_expectation", "kwargs": {
            "unexpected_rows_query": "select delivery_id from {batch} where unit_label = 'forbudt'"}}]}
    monkeypatch.setattr(validation, "_suite_spec", lambda table: spec)
    ok = _insert(url, "ohs_registration", _registration(["A1"]))
    bad = _insert(url, "ohs_registration", _registration(["X"], unit_label="forbudt"))
    batch, _ = validation.validate_batch(url, {d: (["ohs_registration"], PARAMS) for d in (ok, bad)})
    assert batch[ok] == []
    assert [f.expectation for f in batch[bad]] == ["expect_column_values_to_not_be_in_set",
                                                   "unexpected_rows_expectation"]
    # an expectation the compiler does not translate: the table is validated per delivery by GX itself
    spec = {"name": "t", "expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "case_id", "mostly": 0.5}}]}
    with pytest.raises(validation_sql.Unsupported):
        validation_sql.compile_suite("ohs_registration", spec)
    batch, _ = validation.validate_batch(url, {d: (["ohs_registration"], PARAMS) for d in (ok, bad)})
    assert batch == {ok: [], bad: []}


def test_every_raw_suite_compiles():
    """Every raw table's suite is validated once per batch: none falls back to per-delivery GX."""
    raw = [p.stem for p in validation.settings.expectations_dir().glob("*.json")
           if not p.stem.startswith("certified_")]
    assert raw
    for table in raw:
        compiled = validation_sql.compile_suite(table, validation.load_suite(table))
        assert compiled.checks, table
        assert validation_sql.BATCH in compiled.body and "__view__" in compiled.direct_query("__view__")


def test_gx_analytics_are_off(url):
    assert os.environ.get("GX_ANALYTICS_ENABLED") == "false"
    ctx, _ds = validation._context(url)
    assert ctx.config.analytics_enabled is False
    assert "posthog" not in sys.modules


REGEXES = ["^[0-9a-f]{64}$", "^[0-9a-f]{3}$", "^[^a]{2}$", "^[]a-c]{2}$", "^[A-ZÆØÅ]{1}$"]


def _values(regex: str) -> list[str]:
    """Values around the edges of a fixed run: lengths n-1, n, n+1, out of the set, multibyte, newlines."""
    n = int(regex.rsplit("{", 1)[1].split("}")[0])
    inside = {"^[0-9a-f]": "a", "^[^a]{": "b", "^[]a-c]": "]", "^[A-ZÆØÅ]": "Ø"}
    c = next(v for k, v in inside.items() if regex.startswith(k))
    return ["", c * (n - 1), c * n, c * (n + 1), c * (n - 1) + "A", "A" + c * (n - 1), c * (n - 1) + "\n",
            "\n" + c * (n - 1), c * n + "\n", c * (n - 1) + "ø", "æ" * n, "a" * n, "F" * n, "0" * n, "]" * n]


@pytest.mark.parametrize("regex", REGEXES)
def test_a_fixed_run_regex_is_rewritten_to_the_same_answers(url, regex):
    """regex_match's rewrite of `^[set]{n}$` (char_length and `+`) gives PostgreSQL's own answer for `~`."""
    rewritten = validation_sql.regex_match(psycopg.sql.SQL("v"), regex).as_string(None)
    assert "char_length" in rewritten and "{" not in rewritten  # it was rewritten, not passed through
    with psycopg.connect(url, autocommit=True) as conn:
        for value in _values(regex):
            expected, got = conn.execute(f"select v ~ %s, {rewritten} from (select %s::text as v) x",
                                         (regex, value)).fetchone()
            assert got == expected, (regex, value)


@pytest.mark.parametrize("regex", ["^[A-Z0-9]+$", "^[0-9]{2,4}$", "^[[:digit:]]{3}$", "^[a]{2}$x", "^a{3}$"])
def test_any_other_regex_is_compared_as_it_is(regex):
    assert validation_sql.regex_match(psycopg.sql.SQL("v"), regex).as_string(None) == \
        f"v ~ {psycopg.sql.Literal(regex).as_string(None)}"


def test_a_row_check_is_evaluated_once_per_row():
    """Each row-level predicate is one column of r's scan, behind an `offset 0` fence: the pseudonym regex
    appears once in the payroll query, not once per count, first row and examples."""
    body = validation_sql.compile_suite("hr_payroll_absence", validation.load_suite("hr_payroll_absence")).body
    assert body.count("^[0-9a-f]+$") == 1 and "offset 0" in body
    flag = f'"{validation_sql.FLAG}4"'  # check 4: employee_pseudonym not null
    assert body.count(f'b."employee_pseudonym" is null as {flag}') == 1 and body.count(f"b.{flag}") == 3


def test_payroll_pseudonym_edges_as_gx_finds_them(url):
    """The rewritten pseudonym check finds what GX's own regex check finds: 63 and 65 characters, upper case."""
    dids = [_insert(url, "hr_payroll_absence", _payroll(r0={"employee_pseudonym": value}))
            for value in ("a" * 63, "a" * 65, "A" * 64, "a" * 64)]
    batch = _same_as_gx(url, "hr_payroll_absence", dids)
    assert [[(f.expectation, f.column) for f in batch[d]] for d in dids] == \
        [[("expect_column_values_to_match_regex", "employee_pseudonym")]] * 3 + [[]]
