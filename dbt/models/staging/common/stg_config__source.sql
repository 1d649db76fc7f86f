with source as (
    select * from {{ source('raw', 'config_source') }}
),

final as (
    select
        municipality_code,
        source,
        cadence,
        delivers,
        schemes,
        due_day
    from source
)

select * from final
