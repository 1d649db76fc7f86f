-- One row per municipality × source × period the pipeline has seen: was it delivered?
-- 'not_delivered' is a fact of its own, never a zero: a source a municipality does not deliver at all
-- (config) shows here for every period, and nowhere else.
-- 'overdue': a delivery is expected, the source has a due day (config due_day: day of the following month),
-- the latest run's date (audit.period_run.as_of) is past it, and nothing came.
with sources as (
    select * from {{ ref('stg_config__source') }}
),

deliveries as (
    select * from {{ ref('stg_audit__delivery') }}
),

periods as (
    select period from {{ ref('stg_audit__period_run') }}
    union
    select distinct period from deliveries
),

as_of as (
    select max(as_of) as as_of from {{ ref('stg_audit__period_run') }}
),

per_key as (
    select
        municipality_code,
        source,
        period,
        count(*) filter (where status = 'loaded') as n_loaded,
        count(*) filter (where status = 'quarantined') as n_quarantined,
        count(*) filter (where status in ('loaded', 'quarantined', 'superseded', 'duplicate')) as n_files,
        string_agg(reason, '; ' order by delivery_id) filter (where status = 'quarantined') as quarantine_reasons,
        max(received_at) as last_received_at
    from deliveries
    group by municipality_code, source, period
),

-- isolation (trivsel.consistency, trivsel.quality): deliveries held as 'waiting', each named with its reason
quality_issues as (
    select
        municipality_code,
        source,
        period,
        string_agg(file_name || ' (' || scheme || ', delivery ' || delivery_id || '): waiting: ' || coalesce(reason, ''),
                   '; ' order by delivery_id) as quality_issue
    from deliveries
    where status = 'waiting'
    group by municipality_code, source, period
),

grid as (
    select
        sources.municipality_code,
        sources.source,
        periods.period,
        sources.cadence,
        sources.delivers,
        case
            when sources.due_day is not null
                then (to_date(periods.period, 'YYYY-MM') + interval '1 month')::date + (sources.due_day - 1)
        end as due_date
    from sources
    cross join periods
),

final as (
    select
        grid.municipality_code,
        grid.source,
        grid.period,
        case
            when coalesce(per_key.n_loaded, 0) > 0 then 'delivered'
            when coalesce(per_key.n_quarantined, 0) > 0 then 'quarantined'
            when grid.delivers
                and (grid.cadence = 'monthly' or (grid.cadence = 'yearly' and right(grid.period, 2) = '12'))
                and as_of.as_of > grid.due_date then 'overdue'
            else 'not_delivered'
        end as status,
        grid.delivers as source_delivered_by_municipality,
        case
            when not grid.delivers then false
            when grid.cadence = 'monthly' then true
            when grid.cadence = 'yearly' then right(grid.period, 2) = '12'
        end as delivery_expected,
        grid.cadence,
        grid.due_date,
        coalesce(per_key.n_files, 0) as n_files,
        coalesce(per_key.n_loaded, 0) as n_loaded,
        coalesce(per_key.n_quarantined, 0) as n_quarantined,
        case
            when not grid.delivers then 'the municipality does not deliver this source (config)'
            else per_key.quarantine_reasons
        end as reason,
        per_key.last_received_at,
        quality_issues.quality_issue
    from grid
    cross join as_of
    left join per_key
        on per_key.municipality_code = grid.municipality_code
        and per_key.source = grid.source
        and per_key.period = grid.period
    left join quality_issues
        on quality_issues.municipality_code = grid.municipality_code
        and quality_issues.source = grid.source
        and quality_issues.period = grid.period
)

select * from final
