with source as (
    select * from {{ source('audit', 'period_run') }}
),

final as (
    select distinct period
    from source
)

select * from final
