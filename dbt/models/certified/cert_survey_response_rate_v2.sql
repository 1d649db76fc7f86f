{#- Certified response rates, v2: per municipality × wave (with its survey round) and per round for all
    municipalities together ('ALL', wave null where they surveyed the round in different months), with the
    60 % rule (settings.minimum_response_rate). Per-unit rates stay in marts.survey_response_rate. Suppressed when respondents or target population is 1 … threshold−1;
    secondary suppression across the municipalities of 'ALL'. -#}
with rates as (
    select * from {{ ref('survey_response_rate') }}
    where unit_name is null
),

suppressed as (
    {{ secondary_suppression(
        'rates',
        partition_by=['coalesce(round, wave)'],
        primary=is_small('respondents') ~ ' or ' ~ is_small('target_population'),
        size='respondents',
        is_total="municipality_code = 'ALL'"
    ) }}
),

final as (
    select
        municipality_code::text as municipality_code,
        wave::text as wave,
        round::text as round,
        case when not suppressed then respondents end::integer as n_respondents,
        case when not suppressed then target_population end::integer as n_target_population,
        case when not suppressed then response_rate end::numeric(6, 4) as response_rate,
        case when not suppressed then meets_minimum end::boolean as meets_minimum,
        minimum_response_rate::numeric(4, 2) as minimum_response_rate,
        suppressed::boolean as suppressed
    from suppressed
)

select * from final
