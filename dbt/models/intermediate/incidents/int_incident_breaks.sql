-- The recorded comparability breaks (dbt/seeds/common/comparability_breaks.csv) that touch an incident
-- register: HT's tightened near-miss definition in 2013, Nestlegården taken over in 2011. unit_name is
-- null for a break of the whole municipality.
with breaks as (
    select * from {{ ref('comparability_breaks') }}
),

registers as (
    select * from {{ ref('incident_register') }}
),

final as (
    select
        breaks.break_id,
        breaks.municipality_code::text as municipality_code,
        registers.register,
        breaks.unit_name,
        breaks.break_year,
        breaks.kind,
        breaks.description_en,
        breaks.description_da
    from breaks
    inner join registers
        on registers.source = breaks.source
)

select * from final
