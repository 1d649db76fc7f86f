{#- Which wave month is which survey round for each municipality (config/municipalities.yml:
    settings.survey_rounds, sources.survey.rounds). Comparisons pair rounds, never neighbouring months. -#}
with source as (
    select * from {{ source('raw', 'config_survey_round') }}
),

final as (
    select
        municipality_code,
        round_name,
        round_order,
        wave
    from source
)

select * from final
