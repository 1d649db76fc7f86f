{#- Both schemes' answers in one shape: item code and Danish label. The workbook's header text is matched to
    survey_items.text_da (case and runs of whitespace ignored) and its code to a label through
    survey_workbook_codes (via int_survey_item_answers).
    A view, not a table: its one reader, fct_survey_answer (incremental by delivery), selects the new
    deliveries from it and the delivery filter reaches the staging views' raw rows through it, so each answer
    is written once, into the fact (as a table this model wrote every answer a second time, 24 s of a
    national month's 3.6 M answers in `make bench`, and its tests read them again). Which deliveries, and
    the reference_fingerprint they are derived with, is the fact's business (macro survey_answer_deliveries). -#}
{{ config(materialized='view') }}

with csv_answers as (
    select * from {{ ref('stg_survey_respondent_csv__survey_answer_csv') }}
),

xlsx_answers as (
    select * from {{ ref('stg_survey_workbook_xlsx__survey_answer_xlsx') }}
),

items as (
    select * from {{ ref('survey_items') }}
),

item_answers as (
    select * from {{ ref('int_survey_item_answers') }}
),

items_by_text as (
    select
        item_code,
        lower(regexp_replace(btrim(text_da), '\s+', ' ', 'g')) as item_header_key
    from items
),

from_csv as (
    select
        delivery_id,
        'survey_respondent_csv' as scheme,
        municipality_code,
        period,
        source_row,
        respondent_id,
        unit_name,
        wave,
        item_code,
        answer_label,
        answer_label as answer_as_delivered
    from csv_answers
),

from_xlsx as (
    select
        xlsx_answers.delivery_id,
        'survey_workbook_xlsx' as scheme,
        xlsx_answers.municipality_code,
        xlsx_answers.period,
        xlsx_answers.source_row,
        xlsx_answers.respondent_id,
        xlsx_answers.unit_name,
        xlsx_answers.wave,
        items_by_text.item_code,
        item_answers.answer_label,
        xlsx_answers.answer_value as answer_as_delivered
    from xlsx_answers
    left join items_by_text
        on items_by_text.item_header_key = xlsx_answers.item_header_key
    left join item_answers
        on item_answers.item_code = items_by_text.item_code
        and item_answers.workbook_code = xlsx_answers.answer_code
),

unioned as (
    select * from from_csv
    union all
    select * from from_xlsx
),

final as (
    select * from unioned
)

select * from final
