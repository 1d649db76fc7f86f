{#-
  The loaded survey deliveries that carry answers (survey_respondent_csv, survey_workbook_xlsx) with the
  reference_fingerprint their answer rows are derived with in int_survey_answers_unioned and
  fct_survey_answer: an md5 of the questionnaire (seed survey_items), of every possible answer with its
  label, workbook code, ordinal and scores (int_survey_item_answers: seeds survey_scale_labels and
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
        select md5(coalesce(string_agg(
            concat_ws(',', quote_nullable(item_code), quote_nullable(text_da), quote_nullable(scale),
                      quote_nullable(direction)),
            ';' order by item_code), '')) as fingerprint
        from {{ ref('survey_items') }}
    ) as items
    cross join (
        select md5(coalesce(string_agg(
            concat_ws(',', quote_nullable(item_code), quote_nullable(answer_label),
                      quote_nullable(workbook_code), quote_nullable(scale_points),
                      quote_nullable(answer_ordinal), quote_nullable(answer_score),
                      quote_nullable(favourable_score), quote_nullable(is_favourable),
                      quote_nullable(is_non_answer)),
            ';' order by item_code, answer_label, workbook_code), '')) as fingerprint
        from {{ ref('int_survey_item_answers') }}
    ) as answers
    left join (
        select
            municipality_code,
            md5(string_agg(concat_ws(',', quote_nullable(wave), quote_nullable(round_name),
                                     quote_nullable(round_order)),
                           ';' order by wave, round_name)) as fingerprint
        from {{ ref('stg_config__survey_round') }}
        group by municipality_code
    ) as rounds
        on rounds.municipality_code = deliveries.municipality_code
    where deliveries.status = 'loaded'
        and deliveries.scheme in ('survey_respondent_csv', 'survey_workbook_xlsx')
{%- endmacro %}
