{#- The answers of scheme survey_respondent_csv, long: one row per respondent × item, as before issue 15.
    Raw keeps the file's own shape (raw.survey_response_csv: one row per respondent, the item columns as one
    JSON object), so the loader COPYs a respondent once instead of 36 times; the reshape is here, set-based.
    A warehouse loaded before issue 15 still holds long rows in raw.survey_answer_csv: they are read too
    while that table exists (never both for one delivery: a delivery is loaded into one of them). -#}
-- depends_on: {{ source('raw', 'survey_answer_csv') }}
{% set legacy = adapter.get_relation(database=target.database, schema='raw', identifier='survey_answer_csv') %}

with source as (
    {{ loaded_rows('raw', 'survey_response_csv') }}
),

{% if legacy is not none -%}
legacy_source as (
    {{ loaded_rows('raw', 'survey_answer_csv') }}
),

{% endif -%}
unnested as (
    select
        source.delivery_id,
        source.municipality_code,
        source.period,
        source.source_row,
        source.respondent_id,
        source.unit_name,
        source.wave,
        answer.item_code,
        answer.answer_label
    from source
    cross join lateral jsonb_each_text(source.answers) as answer (item_code, answer_label)
),

final as (
    select
        delivery_id,
        municipality_code,
        period,
        source_row,
        respondent_id,
        unit_name,
        wave,
        item_code,
        answer_label
    from unnested
    {%- if legacy is not none %}
    union all
    select
        delivery_id,
        municipality_code,
        period,
        source_row,
        respondent_id,
        unit_name,
        wave,
        item_code,
        answer_label
    from legacy_source
    {%- endif %}
)

select * from final
