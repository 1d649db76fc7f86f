{#- The answers counted per delivery × municipality × wave × survey round × item × answer category (non-answers
    left out): what the certified answer distributions (cert_survey_answer_distribution v1 and v2) aggregate,
    so that certification sums about 20,000 counts instead of scanning every answer of history twice.
    Incremental by delivery (macros/incremental_by_delivery.sql), following fct_survey_answer: a run counts
    the waves the fact holds and this table does not; the pre-hook first deletes the deliveries whose
    (delivery_id, reference_fingerprint) the fact no longer holds (superseded, or rebuilt with other
    reference data). Unsuppressed counts: intermediate is closed to every reader role (trivsel.roles). -#}
{{ config(**incremental_by_delivery_config("delivery_fingerprints(ref('fct_survey_answer'))")) }}

with answers as (
    select * from {{ ref('fct_survey_answer') }}
    {{ only_new_deliveries(delivery_fingerprints(ref('fct_survey_answer'))) }}
),

counted as (
    select
        delivery_id,
        reference_fingerprint,
        municipality_code,
        wave,
        round,
        item_code,
        answer_ordinal,
        count(*) as n_answers
    from answers
    where not is_non_answer and answer_ordinal is not null
    group by delivery_id, reference_fingerprint, municipality_code, wave, round, item_code, answer_ordinal
),

final as (
    select * from counted
)

select * from final
