{#-
  The loaded survey deliveries that carry answers (survey_respondent_csv, survey_workbook_xlsx) with the
  reference_fingerprint their answer rows are derived with in fct_survey_answer (which reads them through the
  view int_survey_answers_unioned): an md5 of the questionnaire (seed survey_items), of every possible answer
  with its label, workbook code, ordinal and scores (int_survey_item_answers: seeds survey_scale_labels and
  survey_workbook_codes) and of the municipality's survey rounds (stg_config__survey_round). When any of
  these changes, the fingerprint of the affected deliveries changes and the incremental models rebuild them
  (macros/incremental_by_delivery.sql); population files carry no answers and are not here. Returns
  (delivery_id, municipality_code, reference_fingerprint).
-#}
{% macro survey_answer_deliveries() -%}
    select
        deliveries.delivery_id,
        deliveries.municipality_code,
        md5(concat_ws('|',
            items.fingerprint,
            answers.fingerprint,
            coalesce(rounds.fingerprint, 'no rounds')
        )) as reference_fingerprint
    from ({{ pinned_deliveries() }}) as deliveries
    cross join (
        {{ reference_fingerprint(ref('survey_items'), ['item_code', 'text_da', 'scale', 'direction'], ['item_code']) }}
    ) as items
    cross join (
        {{ reference_fingerprint(ref('int_survey_item_answers'),
                                 ['item_code', 'answer_label', 'workbook_code', 'scale_points', 'answer_ordinal',
                                  'answer_score', 'favourable_score', 'is_favourable', 'is_non_answer'],
                                 ['item_code', 'answer_label', 'workbook_code']) }}
    ) as answers
    left join (
        {{ reference_fingerprint(ref('stg_config__survey_round'), ['wave', 'round_name', 'round_order'],
                                 ['wave', 'round_name'], group_by='municipality_code') }}
    ) as rounds
        on rounds.municipality_code = deliveries.municipality_code
    where deliveries.status = 'loaded'
        and deliveries.scheme in ('survey_respondent_csv', 'survey_workbook_xlsx')
{%- endmacro %}
