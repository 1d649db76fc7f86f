-- The recorded hr_absence comparability breaks, with empty unit_name meaning the whole municipality.
with breaks as (
    select * from {{ ref('comparability_breaks') }}
),

final as (
    select
        break_id,
        municipality_code::text as municipality_code,
        nullif(trim(unit_name), '') as unit_name,
        break_year,
        kind,
        description_en,
        description_da
    from breaks
    where source = 'hr_absence'
)

select * from final
