with source as (
    select * from {{ source('raw', 'config_municipality') }}
),

final as (
    select
        municipality_code,
        municipality_name
    from source
)

select * from final
