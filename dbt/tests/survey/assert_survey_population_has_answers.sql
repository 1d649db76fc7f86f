-- Every wave of a loaded population file (survey_population_csv) has loaded answers (survey_respondent_csv)
-- of the same municipality: a denominator without its numerator is a delivery that cannot be matched.
-- per_municipality (trivsel.quality): a failing row holds its delivery, not every municipality's models.
{{ config(tags=['per_municipality']) }}
with populations as (
    select * from {{ ref('stg_survey_population_csv__survey_population_csv') }}
),

answers as (
    select distinct municipality_code, wave from {{ ref('stg_survey_respondent_csv__survey_answer_csv') }}
),

final as (
    select populations.municipality_code, populations.delivery_id, populations.source_row, populations.wave
    from populations
    left join answers
        on answers.municipality_code = populations.municipality_code
        and answers.wave = populations.wave
    where answers.wave is null
)

select * from final
