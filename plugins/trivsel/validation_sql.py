"""A raw table's GX suite compiled into one SQL query over many deliveries, grouped by delivery_id.

Why: GX costs about 0.1 s of fixed Python per validation, and a national month has about 400 deliveries.
Validating each table once per run, over all of the run's new deliveries, pays that cost once per table;
grouping by delivery_id keeps the verdict (and quarantine, with its reasons) per delivery.

The suite JSON in expectations/ stays the single source of truth (Data Docs and `trivsel docs` read it):
each row-level or per-delivery expectation becomes one numbered check in one query; PostgreSQL runs it once
into a table of the gx schema and GX reports it as a single `UnexpectedRowsExpectation` over that table
(trivsel.validation._run_compiled says why). The query returns one row per failing (delivery, check):
(delivery_id, check_no, n, first_row, examples). Schema-level expectations (the table's columns) are the
same for every delivery of a table: GX runs them as they are, once per table (`native`).

A `{"$param": name}` kwarg becomes a column of the per-delivery parameter CTE `p`, so one query serves
deliveries of many periods and municipalities. An expectation or kwarg the compiler does not know raises
Unsupported: the caller validates that table per delivery with GX as before, never silently less.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql

BATCH = "__TRIVSEL_BATCH__"  # where the batch goes (the view of the run's deliveries)
FLAG = "trivsel_check_"  # a row-level check's predicate as a column of r's scan (no raw column has the prefix)

NATIVE = frozenset({
    "expect_table_columns_to_match_set", "expect_table_columns_to_match_ordered_list",
    "expect_column_to_exist", "expect_table_column_count_to_equal", "expect_table_column_count_to_be_between",
})

_COMMON = {"meta", "notes", "description", "result_format", "catch_exceptions", "include_config"}
_ALLOWED = {
    "expect_column_values_to_not_be_null": {"column"},
    "expect_column_values_to_be_null": {"column"},
    "expect_column_values_to_be_in_set": {"column", "value_set"},
    "expect_column_values_to_not_be_in_set": {"column", "value_set"},
    "expect_column_values_to_be_between": {"column", "min_value", "max_value", "strict_min", "strict_max"},
    "expect_column_values_to_match_regex": {"column", "regex"},
    "expect_column_values_to_not_match_regex": {"column", "regex"},
    "expect_column_values_to_be_unique": {"column"},
    "expect_compound_columns_to_be_unique": {"column_list", "ignore_row_if"},
    "expect_column_pair_values_a_to_be_greater_than_b": {"column_A", "column_B", "or_equal", "ignore_row_if"},
    "expect_table_row_count_to_be_between": {"min_value", "max_value", "strict_min", "strict_max"},
    "expect_column_unique_value_count_to_be_between": {"column", "min_value", "max_value", "strict_min",
                                                       "strict_max"},
    "unexpected_rows_expectation": {"unexpected_rows_query", "description"},
}
#: checks whose n is what GX reports as observed_value (a count), not a number of unexpected values;
#: UnexpectedRowsExpectation observes the number of rows its query returns
OBSERVED = frozenset({"expect_table_row_count_to_be_between", "expect_column_unique_value_count_to_be_between",
                      "unexpected_rows_expectation"})


class Unsupported(ValueError):
    """An expectation (or kwarg) this compiler does not translate: validate the table per delivery."""


@dataclass(frozen=True)
class Check:
    number: int
    type: str
    column: str | None  # as the failure names it: column, or column_list joined by commas
    kwargs: dict[str, Any]  # as in the suite ($param unfilled)
    observed: bool  # True: n is an observed value (a count); False: n unexpected rows


@dataclass
class Compiled:
    table: str
    body: str  # SQL with BATCH where the batch goes
    checks: dict[int, Check] = field(default_factory=dict)
    native: list[dict[str, Any]] = field(default_factory=list)  # suite entries GX runs on the batch itself

    def direct_query(self, relation: str) -> str:
        """The checks over `relation` (the batch's view), as PostgreSQL runs them once per table and run
        (trivsel.validation._run_compiled materialises the failing rows for GX)."""
        return self.body.replace(BATCH, relation)


def _is_param(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"$param"}


def param_type(values: list[Any]) -> str:
    """The SQL type of one parameter column, from its values over the run's deliveries."""
    seen = [v for v in values if v is not None]
    if not seen:
        return "text"
    if all(isinstance(v, bool) for v in seen):
        return "boolean"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in seen):
        return "bigint"
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in seen):
        return "double precision"
    if all(isinstance(v, (list, tuple)) for v in seen):
        inner = param_type([x for v in seen for x in v])
        return inner + "[]"
    return "text"


def params_cte(deliveries: dict[int, dict[str, Any]]) -> sql.Composed:
    """`p (delivery_id, <param>...) as (values ...)`: one row per delivery of the run, typed per column."""
    names = sorted({k for params in deliveries.values() for k in params})
    types = {n: param_type([params.get(n) for params in deliveries.values()]) for n in names}
    rows = []
    for did, params in sorted(deliveries.items()):
        cells = [sql.SQL("{}::bigint").format(sql.Literal(int(did)))]
        for n in names:
            v = params.get(n)
            if isinstance(v, (list, tuple)):
                cast = types[n][:-2] if types[n].endswith("[]") else "text"
                lit = sql.SQL("array[{}]::{}[]").format(
                    sql.SQL(", ").join(sql.Literal(x) for x in v), sql.SQL(cast)) if v else \
                    sql.SQL("array[]::{}").format(sql.SQL(types[n]))
                cells.append(lit)
            else:
                cells.append(sql.SQL("{}::{}").format(sql.Literal(v), sql.SQL(types[n])))
        rows.append(sql.SQL("({})").format(sql.SQL(", ").join(cells)))
    cols = [sql.Identifier("delivery_id")] + [sql.Identifier(n) for n in names]
    return sql.SQL("p ({}) as (values {})").format(sql.SQL(", ").join(cols), sql.SQL(", ").join(rows))


def _col(name: str) -> sql.Composable:
    return sql.SQL("b.{}").format(sql.Identifier(name))


def _scalar(value: Any) -> sql.Composable:
    if _is_param(value):
        return sql.SQL("p.{}").format(sql.Identifier(value["$param"]))
    if isinstance(value, (dict, list)):
        raise Unsupported(f"a {type(value).__name__} where a single value is expected: {value!r}")
    return sql.Literal(value)


def _membership(column: sql.Composable, value_set: Any) -> sql.Composable:
    """`column` is in the set (null when the column is null: callers exclude null values first)."""
    if _is_param(value_set):
        return sql.SQL("{} = any({})").format(column, _scalar(value_set))
    if not isinstance(value_set, list):
        raise Unsupported(f"value_set must be a list or a parameter, got {value_set!r}")
    if not value_set:
        return sql.SQL("false")
    return sql.SQL("{} in ({})").format(column, sql.SQL(", ").join(_scalar(v) for v in value_set))


def _range(value: sql.Composable, kw: dict[str, Any]) -> sql.Composable:
    """`value` lies within min_value/max_value (either may be absent), as GX's between reads them."""
    parts = []
    if kw.get("min_value") is not None:
        op = ">" if kw.get("strict_min") else ">="
        parts.append(sql.SQL("{} {} {}").format(value, sql.SQL(op), _scalar(kw["min_value"])))
    if kw.get("max_value") is not None:
        op = "<" if kw.get("strict_max") else "<="
        parts.append(sql.SQL("{} {} {}").format(value, sql.SQL(op), _scalar(kw["max_value"])))
    return sql.SQL(" and ").join(parts) if parts else sql.SQL("true")


def _row_predicate(etype: str, kw: dict[str, Any]) -> tuple[sql.Composable, sql.Composable | None]:
    """(the row is unexpected, the value shown as an example or None) for a row-level expectation."""
    if etype == "expect_column_pair_values_a_to_be_greater_than_b":
        a, b = _col(kw["column_A"]), _col(kw["column_B"])
        ignore = kw.get("ignore_row_if", "both_values_are_missing")
        skip = {"both_values_are_missing": sql.SQL("({} is null and {} is null)").format(a, b),
                "either_value_is_missing": sql.SQL("({} is null or {} is null)").format(a, b),
                "neither": sql.SQL("false")}.get(ignore)
        if skip is None:
            raise Unsupported(f"ignore_row_if {ignore!r}")
        op = sql.SQL(">=" if kw.get("or_equal") else ">")
        pred = sql.SQL("not {} and not coalesce({} {} {}, false)").format(skip, a, op, b)
        return pred, sql.SQL("jsonb_build_array({}, {})").format(a, b)
    c = _col(kw["column"])
    example = sql.SQL("to_jsonb({})").format(c)
    if etype == "expect_column_values_to_not_be_null":
        return sql.SQL("{} is null").format(c), example
    if etype == "expect_column_values_to_be_null":
        return sql.SQL("{} is not null").format(c), example
    if etype == "expect_column_values_to_be_in_set":
        return sql.SQL("{} is not null and not ({})").format(c, _membership(c, kw["value_set"])), example
    if etype == "expect_column_values_to_not_be_in_set":
        return sql.SQL("{} is not null and ({})").format(c, _membership(c, kw["value_set"])), example
    if etype == "expect_column_values_to_be_between":
        return sql.SQL("{} is not null and not ({})").format(c, _range(c, kw)), example
    if etype in ("expect_column_values_to_match_regex", "expect_column_values_to_not_match_regex"):
        neg = sql.SQL("not " if etype == "expect_column_values_to_match_regex" else "")
        return sql.SQL("{} is not null and {}({})").format(
            c, neg, regex_match(sql.SQL("cast({} as text)").format(c), kw["regex"])), example
    raise Unsupported(etype)


#: `^[set]{n}$`: a whole value of exactly n characters of one bracket expression (no nested brackets,
#: classes or escapes inside, so the set is one plain bracket expression)
_FIXED_RUN = re.compile(r"^\^(\[\^?\]?[^\[\]\\]*\])\{([1-9][0-9]{0,3})\}\$$")


def regex_match(value: sql.Composable, regex: Any) -> sql.Composable:
    """`value ~ regex`, as PostgreSQL evaluates it, written so that a fixed-length run costs what `+` costs.

    Why: PostgreSQL's regex engine expands a bounded repetition into one state per count, and
    `^[0-9a-f]{64}$` (the payroll's pseudonym check) took ~25 us a row against ~2.5 us for `^[0-9a-f]+$`:
    18 s of a national month's 703,564 payroll rows, on one core. `^[set]{n}$` matches exactly the
    values of n characters each in the set, which is `char_length(value) = n and value ~ '^[set]+$'` (n >= 1:
    the same anchors, one bracket expression matching one character either way). Any other regex, or a
    parameter, is compared as it is. tests/rails/test_validation_batch.py checks the two forms agree in
    PostgreSQL on values around the edges (lengths n-1, n, n+1, multibyte, newlines, out-of-set)."""
    if isinstance(regex, str) and (m := _FIXED_RUN.match(regex)):
        bracket, n = m.group(1), int(m.group(2))
        return sql.SQL("(char_length({v}) = {n} and {v} ~ {r})").format(
            v=value, n=sql.Literal(n), r=sql.Literal(f"^{bracket}+$"))
    return sql.SQL("{} ~ {}").format(value, _scalar(regex))


def _column_name(kw: dict[str, Any]) -> str | None:
    if kw.get("column"):
        return kw["column"]
    if "column_list" in kw:
        return ",".join(kw["column_list"])
    return None


def compile_suite(table: str, spec: dict[str, Any]) -> Compiled:
    """The suite's expectations as one query over the batch `BATCH` and the parameter CTE `p`."""
    out = Compiled(table=table, body="")
    aggregates: list[sql.Composable] = []  # columns of r, the one scan with per-check FILTERs
    flags: list[sql.Composable] = []  # each row-level check's predicate, evaluated once per row
    lateral: list[sql.Composable] = []  # (check_no, n, first_row, examples) of r's row-level checks
    unions: list[sql.Composable] = []  # further failing (delivery, check) rows
    ctes: list[sql.Composable] = []
    for number, e in enumerate(spec.get("expectations", [])):
        etype, kw = e["type"], dict(e.get("kwargs") or {})
        if etype in NATIVE:
            out.native.append(e)
            continue
        if etype not in _ALLOWED:
            raise Unsupported(f"{table}: no SQL translation for {etype}")
        unknown = set(kw) - _ALLOWED[etype] - _COMMON
        if unknown:
            raise Unsupported(f"{table}: {etype} with {sorted(unknown)}")
        out.checks[number] = Check(number, etype, _column_name(kw), kw, etype in OBSERVED)
        k = sql.Literal(number)
        if etype == "expect_table_row_count_to_be_between":
            n = sql.SQL("coalesce(r.n_rows, 0)")
            unions.append(sql.SQL("select p.delivery_id, {k}, {n}, null::bigint, null::text from p left join r"
                                  " on r.delivery_id = p.delivery_id where not ({ok})").format(
                k=k, n=n, ok=_range(n, kw)))
        elif etype == "expect_column_unique_value_count_to_be_between":
            name = sql.Identifier(f"d{number}")
            aggregates.append(sql.SQL("count(distinct {}) as {}").format(_col(kw["column"]), name))
            n = sql.SQL("coalesce(r.{}, 0)").format(name)
            unions.append(sql.SQL("select p.delivery_id, {k}, {n}, null::bigint, null::text from p left join r"
                                  " on r.delivery_id = p.delivery_id where not ({ok})").format(
                k=k, n=n, ok=_range(n, kw)))
        elif etype in ("expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique"):
            cols = [kw["column"]] if etype == "expect_column_values_to_be_unique" else list(kw["column_list"])
            ignore = kw.get("ignore_row_if", "all_values_are_missing" if len(cols) > 1 else "any_value_is_missing")
            joiner = {"all_values_are_missing": " and ", "any_value_is_missing": " or "}.get(ignore)
            if ignore == "never":
                skip = sql.SQL("false")
            elif joiner is None:
                raise Unsupported(f"{table}: {etype} with ignore_row_if {ignore!r}")
            else:
                skip = sql.SQL("({})").format(sql.SQL(joiner).join(sql.SQL("{} is null").format(_col(c))
                                                                   for c in cols))
            keys = sql.SQL(", ").join(_col(c) for c in cols)
            example = (sql.SQL("to_jsonb({})").format(_col(cols[0])) if len(cols) == 1 else
                       sql.SQL("jsonb_build_object({})").format(sql.SQL(", ").join(
                           sql.SQL("{}, {}").format(sql.Literal(c), _col(c)) for c in cols)))
            name = sql.Identifier(f"u{number}")
            ctes.append(sql.SQL(
                "{name} as (select delivery_id, sum(n)::bigint as n, min(f) as f,"
                " cast(to_jsonb((array_agg(e))[1:10]) as text) as e from (select b.delivery_id, count(*) as n,"
                " min(b.source_row)::bigint as f, {ex} as e from b where not {skip} group by b.delivery_id,"
                " {keys} having count(*) > 1) x group by delivery_id)").format(
                name=name, ex=example, skip=skip, keys=keys))
            unions.append(sql.SQL("select delivery_id, {k}, n, f, e from {name}").format(k=k, name=name))
        elif etype == "unexpected_rows_expectation":
            query = kw["unexpected_rows_query"]
            if "{batch}" not in query:
                raise Unsupported(f"{table}: an unexpected_rows_query without {{batch}}")
            inner = query.replace("{batch}", "b")
            unions.append(sql.SQL("select q.delivery_id, {k}, count(*)::bigint, null::bigint, null::text from ("
                                  + inner.replace("{", "{{").replace("}", "}}") +
                                  ") q group by q.delivery_id").format(k=k))
        else:
            pred, example = _row_predicate(etype, kw)
            n, f, x = (sql.Identifier(f"{c}{number}") for c in "nfx")
            flag = sql.Identifier(f"{FLAG}{number}")
            flags.append(sql.SQL("{} as {}").format(pred, flag))
            p = sql.SQL("b.{}").format(flag)
            aggregates.append(sql.SQL("count(*) filter (where {p}) as {n}, min(b.source_row) filter (where {p})"
                                      " as {f}, (array_agg({ex}) filter (where {p}))[1:10] as {x}").format(
                p=p, n=n, f=f, ex=example, x=x))
            lateral.append(sql.SQL("({k}, r.{n}, r.{f}::bigint, cast(to_jsonb(r.{x}) as text))").format(
                k=k, n=n, f=f, x=x))
    # Each row's predicates once: a check's count, first row and examples each filter on it, and without
    # the fence (`offset 0`) PostgreSQL pulls the subquery up and evaluates the predicate once per aggregate.
    r = sql.SQL("r as (select b.delivery_id, count(*) as n_rows{more} from (select b.*{flags} from b join p on"
                " p.delivery_id = b.delivery_id offset 0) b group by b.delivery_id)").format(
        more=sql.SQL("").join(sql.SQL(", {}").format(a) for a in aggregates),
        flags=sql.SQL("").join(sql.SQL(", {}").format(f) for f in flags))
    if lateral:
        unions.insert(0, sql.SQL(
            "select p.delivery_id, v.check_no, v.n, v.first_row, v.examples from p join r on r.delivery_id ="
            " p.delivery_id cross join lateral (values {}) as v(check_no, n, first_row, examples)"
            " where v.n > 0").format(sql.SQL(", ").join(lateral)))
    if not unions:
        unions.append(sql.SQL("select null::bigint, null::int, null::bigint, null::bigint, null::text where false"))
    out.body = sql.SQL("with {p}, b as (select * from " + BATCH + "), {r}{ctes} select delivery_id, check_no, n,"
                       " first_row, examples from ({u}) failed(delivery_id, check_no, n, first_row, examples)"
                       " order by delivery_id, check_no").format(
        p=sql.SQL("__TRIVSEL_PARAMS__"), r=r, ctes=sql.SQL("").join(sql.SQL(", {}").format(c) for c in ctes),
        u=sql.SQL(" union all ").join(unions)).as_string(None)
    return out


def with_params(compiled: Compiled, deliveries: dict[int, dict[str, Any]]) -> Compiled:
    """The compiled suite with the run's deliveries and their parameters filled in."""
    body = compiled.body.replace("__TRIVSEL_PARAMS__", params_cte(deliveries).as_string(None), 1)
    return Compiled(compiled.table, body, compiled.checks, compiled.native)
