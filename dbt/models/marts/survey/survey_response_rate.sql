{#- Respondents against the target population per municipality and wave, and for all municipalities
    together ('ALL'). The minimum acceptable rate is the var minimum_response_rate (the report: 60 %). -#}
with answers as (
    select * from {{ ref('fct_survey_answer') }}
),

populations as (
    select * from {{ ref('int_survey_populations_unioned') }}
),

respondents as (
    select
        municipality_code,
        wave,
        count(distinct respondent_key) as respondents
    from answers
    group by municipality_code, wave
),

targets as (
    select
        municipality_code,
        wave,
        sum(target_population) as target_population,
        count(*) as units
    from populations
    group by municipality_code, wave
),

per_municipality as (
    select
        coalesce(respondents.municipality_code, targets.municipality_code) as municipality_code,
        coalesce(respondents.wave, targets.wave) as wave,
        coalesce(respondents.respondents, 0) as respondents,
        targets.target_population,
        1 as municipalities
    from respondents
    full outer join targets
        on targets.municipality_code = respondents.municipality_code
        and targets.wave = respondents.wave
),

all_municipalities as (
    select
        'ALL' as municipality_code,
        wave,
        sum(respondents) as respondents,
        sum(target_population) as target_population,
        count(*) as municipalities
    from per_municipality
    group by wave
),

unioned as (
    select * from per_municipality
    union all
    select * from all_municipalities
),

final as (
    select
        municipality_code,
        wave,
        respondents::integer as respondents,
        target_population::integer as target_population,
        round(respondents::numeric / nullif(target_population, 0), 4) as response_rate,
        coalesce(
            respondents::numeric / nullif(target_population, 0) >= {{ var('minimum_response_rate', 0.60) }},
            false
        ) as meets_minimum,
        {{ var('minimum_response_rate', 0.60) }}::numeric as minimum_response_rate,
        municipalities::integer as municipalities
    from unioned
)

select * from final
