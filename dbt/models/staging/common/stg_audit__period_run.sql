with source as (
    select * from {{ source('audit', 'period_run') }}
),

final as (
    select
        period,
        max(coalesce(as_of, started_at::date)) as as_of
    from source
    group by period
)

select * from final
