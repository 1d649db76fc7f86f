with source as (
    select * from {{ source('raw', 'config_unit') }}
),

final as (
    select
        municipality_code,
        unit_name,
        coalesce(valid_from, date '1900-01-01') as valid_from,
        valid_to
    from source
)

select * from final
