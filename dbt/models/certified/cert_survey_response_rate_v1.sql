{#- Certified response rates per municipality × wave and for all municipalities together ('ALL'), with the
    60 % rule (var minimum_response_rate). Suppressed when respondents or target population is 1 … threshold−1;
    secondary suppression across the municipalities of 'ALL'. -#}
with rates as (
    select * from {{ ref('survey_response_rate') }}
    -- v1: the municipality rows and the 'ALL' rows of one month (units and rounds are in v2)
    where unit_name is null and wave is not null
),

suppressed as (
    {{ secondary_suppression(
        'rates',
        partition_by=['wave'],
        primary=is_small('respondents') ~ ' or ' ~ is_small('target_population'),
        size='respondents',
        is_total="municipality_code = 'ALL'"
    ) }}
),

final as (
    select
        municipality_code::text as municipality_code,
        wave::text as wave,
        case when not suppressed then respondents end::integer as n_respondents,
        case when not suppressed then target_population end::integer as n_target_population,
        case when not suppressed then response_rate end::numeric(6, 4) as response_rate,
        case when not suppressed then meets_minimum end::boolean as meets_minimum,
        minimum_response_rate::numeric(4, 2) as minimum_response_rate,
        suppressed::boolean as suppressed
    from suppressed
)

select * from final
