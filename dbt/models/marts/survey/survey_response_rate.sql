{#- Respondents against the target population per municipality and wave, per unit of the population file
    (unit_name; null on the municipality's row), and per round for all municipalities together ('ALL', over
    the municipalities that surveyed in that round). meets_minimum compares with settings.minimum_response_rate
    of config/municipalities.yml (var minimum_response_rate where the setting is absent; the report: 60 %). -#}
with answers as (
    select * from {{ ref('fct_survey_answer') }}
),

populations as (
    select * from {{ ref('int_survey_populations_unioned') }}
),

rounds as (
    select * from {{ ref('stg_config__survey_round') }}
),

settings as (
    select * from {{ ref('stg_config__setting') }}
),

minimum as (
    select coalesce(
        (select setting_value::numeric from settings where setting_name = 'minimum_response_rate'),
        {{ var('minimum_response_rate', 0.60) }}::numeric
    ) as minimum_response_rate
),

{#- Each respondent once per unit: one pass over the answers (one row per respondent × item) to a set the
    size of the respondents, which both counts below read; counting distinct keys of the answers twice
    sorted them twice. -#}
unit_respondent_keys as (
    select distinct
        municipality_code,
        wave,
        unit_name,
        respondent_key
    from answers
),

respondents as (
    select
        municipality_code,
        wave,
        count(distinct respondent_key) as respondents
    from unit_respondent_keys
    group by municipality_code, wave
),

unit_respondents as (
    select
        municipality_code,
        wave,
        unit_name,
        count(respondent_key) as respondents
    from unit_respondent_keys
    group by municipality_code, wave, unit_name
),

targets as (
    select
        municipality_code,
        wave,
        sum(target_population) as target_population
    from populations
    group by municipality_code, wave
),

unit_targets as (
    select
        municipality_code,
        wave,
        unit_name,
        sum(target_population) as target_population
    from populations
    group by municipality_code, wave, unit_name
),

per_municipality as (
    select
        coalesce(respondents.municipality_code, targets.municipality_code) as municipality_code,
        coalesce(respondents.wave, targets.wave) as wave,
        null::text as unit_name,
        coalesce(respondents.respondents, 0) as respondents,
        targets.target_population,
        1 as municipalities
    from respondents
    full outer join targets
        on targets.municipality_code = respondents.municipality_code
        and targets.wave = respondents.wave
),

{#- Units as the population file names them: a unit no one answered from has 0 respondents. -#}
per_unit as (
    select
        unit_targets.municipality_code,
        unit_targets.wave,
        unit_targets.unit_name,
        coalesce(unit_respondents.respondents, 0) as respondents,
        unit_targets.target_population,
        1 as municipalities
    from unit_targets
    left join unit_respondents
        on unit_respondents.municipality_code = unit_targets.municipality_code
        and unit_respondents.wave = unit_targets.wave
        and unit_respondents.unit_name = unit_targets.unit_name
),

with_round as (
    select
        unioned.*,
        rounds.round_name as round,
        rounds.round_order
    from (
        select * from per_municipality
        union all
        select * from per_unit
    ) as unioned
    left join rounds
        on rounds.municipality_code = unioned.municipality_code
        and rounds.wave = unioned.wave
),

{#- Pooled by round, never by month: municipalities surveying the same round in different months are
    counted together; wave is the month only where all of them surveyed in the same one. -#}
all_municipalities as (
    select
        'ALL' as municipality_code,
        case when count(distinct wave) = 1 then min(wave) end as wave,
        null::text as unit_name,
        sum(respondents) as respondents,
        sum(target_population) as target_population,
        count(*) as municipalities,
        round,
        min(round_order) as round_order
    from with_round
    where round is not null and unit_name is null
    group by round
),

unioned as (
    select * from with_round
    union all
    select * from all_municipalities
),

final as (
    select
        unioned.municipality_code,
        unioned.wave,
        unioned.round,
        unioned.round_order::integer as round_order,
        unioned.unit_name,
        unioned.respondents::integer as respondents,
        unioned.target_population::integer as target_population,
        round(unioned.respondents::numeric / nullif(unioned.target_population, 0), 4) as response_rate,
        coalesce(
            unioned.respondents::numeric / nullif(unioned.target_population, 0) >= minimum.minimum_response_rate,
            false
        ) as meets_minimum,
        minimum.minimum_response_rate,
        unioned.municipalities::integer as municipalities
    from unioned
    cross join minimum
)

select * from final
