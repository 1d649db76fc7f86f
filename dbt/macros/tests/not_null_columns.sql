{#- Fails for every row with a null in one of `columns`; each failing row names its null columns (null_columns),
    never a value of the row. One scan of the model checks every column: a `not_null` per column scanned it once
    each, and for the survey answer tables (one row per respondent × item, 3.6 M rows at scale 1) those scans
    were most of the dbt stage (docs/scaling.md, "The fifth round").

    when: a condition per column under which it must not be null (`answer_label: "answer_as_delivered is not
    null"`), as a `not_null` test's own `where` was; a column not in `when` must never be null. The test's
    config `where` (`__new_deliveries__`, macros/tests/get_where_subquery.sql) limits the rows as for any test. -#}
{% test not_null_columns(model, columns, when={}) %}
{%- set checks = [] -%}
{%- for column in columns -%}
    {%- set condition = adapter.quote(column) ~ ' is null' -%}
    {%- if column in when -%}
        {%- set condition = '(' ~ condition ~ ' and (' ~ when[column] ~ '))' -%}
    {%- endif -%}
    {%- do checks.append((column, condition)) -%}
{%- endfor -%}
{%- for column in when if column not in columns -%}
    {%- do exceptions.raise_compiler_error("not_null_columns: `when` names " ~ column ~ ", not one of its columns") -%}
{%- endfor %}
with failing as (
    select
        array_remove(array[
            {%- for column, condition in checks %}
            case when {{ condition }} then {{ dbt.string_literal(column) }} end{{ ',' if not loop.last }}
            {%- endfor %}
        ], null) as null_columns
    from {{ model }}
    where
        {%- for column, condition in checks %}
        {{ 'or ' if not loop.first }}{{ condition }}
        {%- endfor %}
)

select null_columns from failing
{% endtest %}
