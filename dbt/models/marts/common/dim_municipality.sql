with municipalities as (
    select * from {{ ref('stg_config__municipality') }}
),

final as (
    select
        municipality_code,
        municipality_name
    from municipalities
)

select * from final
