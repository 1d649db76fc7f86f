-- Person-level (one row per respondent × item): built in schema `person`, which only the transformer reads
-- (plugins/trivsel/roles.py); bi_reader, evaluator and the municipality roles read the aggregates.
-- Incremental by delivery (macros/incremental_by_delivery.sql), like int_absence__employee_month: a run adds
-- the loaded answer deliveries (waves) not yet here; the pre-hook first deletes the deliveries no longer
-- loaded (a corrected re-delivery supersedes its wave) and those derived with other reference data
-- (reference_fingerprint: questionnaire, answer labels and codes, survey rounds; macro
-- survey_answer_deliveries). It reads the new deliveries' answers through the view int_survey_answers_unioned,
-- so each answer is written once.
{{ config(schema='person', **incremental_by_delivery_config("survey_answer_deliveries()")) }}

with deliveries as (
    {{ survey_answer_deliveries() }}
),

answers as (
    select * from {{ ref('int_survey_answers_unioned') }}
    {{ only_new_deliveries('select * from deliveries') }}
),

item_answers as (
    select * from {{ ref('int_survey_item_answers') }}
),

items as (
    select * from {{ ref('survey_items') }}
),

rounds as (
    select * from {{ ref('stg_config__survey_round') }}
),

scored as (
    select
        answers.municipality_code,
        answers.unit_name,
        answers.wave,
        rounds.round_name as round,
        rounds.round_order,
        answers.municipality_code || ':' || answers.wave || ':' || answers.respondent_id as respondent_key,
        answers.respondent_id,
        answers.item_code,
        items.scale,
        items.direction,
        answers.answer_label,
        answers.answer_as_delivered,
        item_answers.answer_ordinal,
        item_answers.answer_score,
        item_answers.favourable_score,
        item_answers.is_favourable,
        answers.answer_label is null or coalesce(item_answers.is_non_answer, false) as is_non_answer,
        scale_points.scale_points,
        answers.scheme,
        answers.delivery_id,
        answers.source_row,
        deliveries.reference_fingerprint
    from answers
    inner join deliveries
        on deliveries.delivery_id = answers.delivery_id
    left join items
        on items.item_code = answers.item_code
    left join rounds
        on rounds.municipality_code = answers.municipality_code
        and rounds.wave = answers.wave
    left join item_answers
        on item_answers.item_code = answers.item_code
        and item_answers.answer_label = answers.answer_label
    left join (
        select item_code, max(scale_points) as scale_points from item_answers group by item_code
    ) as scale_points
        on scale_points.item_code = answers.item_code
),

final as (
    select
        municipality_code,
        unit_name,
        wave,
        round,
        round_order,
        respondent_key,
        respondent_id,
        item_code,
        scale,
        direction,
        answer_label,
        answer_as_delivered,
        answer_ordinal,
        answer_score,
        favourable_score,
        is_favourable,
        is_non_answer,
        scale_points,
        scheme,
        delivery_id,
        source_row,
        reference_fingerprint
    from scored
)

select * from final
