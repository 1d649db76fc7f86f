-- The recorded comparability breaks that touch each incident register, for reports and the rate test
-- (trivsel.stats.incidents names a break when a baseline/follow-up comparison crosses its break_year).
with breaks as (
    select * from {{ ref('int_incident_breaks') }}
),

final as (
    select
        break_id,
        municipality_code,
        register,
        unit_name,
        break_year,
        kind,
        description_en,
        description_da
    from breaks
)

select * from final
