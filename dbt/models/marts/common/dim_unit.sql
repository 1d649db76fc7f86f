with units as (
    select * from {{ ref('stg_config__unit') }}
),

municipalities as (
    select * from {{ ref('stg_config__municipality') }}
),

final as (
    select
        units.municipality_code,
        municipalities.municipality_name,
        units.unit_name,
        units.valid_from,
        units.valid_to,
        extract(year from units.valid_from)::int as first_year,
        extract(year from units.valid_to)::int as last_year
    from units
    inner join municipalities using (municipality_code)
)

select * from final
