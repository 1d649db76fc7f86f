-- One row per municipality × source × period the pipeline has seen: was it delivered, and how completely?
-- Four different facts are never merged (issue 12 §5):
--   delivered           every file of the key that came is loaded;
--   partly_quarantined  some files of the key are loaded, at least one other is quarantined (and not yet
--                       replaced by a later loaded delivery of its scheme): the figures are incomplete;
--   quarantined         files came, none is loaded, at least one is quarantined;
--   not_delivered       nothing came. A source a municipality does not deliver at all (config) shows here
--                       for every period, and nowhere else. Never a zero.
-- and beside them:
--   waiting             a file is held because it cannot be matched yet with another delivery (e.g. a case
--                       review before its registry export), nothing of the key is quarantined;
--   overdue             a delivery is expected, the source has a due day (config due_day: day of the
--                       following month), the latest run's date (audit.period_run.as_of) is past it, and
--                       nothing came;
--   unroutable          only files that could not be routed (unknown municipality or source folder, a
--                       sub-folder, a malformed period folder): archived, with their reason. Their unknown
--                       municipality/source/period show as '(unknown)', so the key stays unique and not null.
-- A quarantined or waiting delivery is open until a later delivery of the same scheme (any scheme when the
-- file matched none) is loaded for the key (int_delivery_states); only open ones decide the status, all
-- are counted.
with sources as (
    select * from {{ ref('stg_config__source') }}
),

deliveries as (
    select * from {{ ref('int_delivery_states') }}
),

periods as (
    select period from {{ ref('stg_audit__period_run') }}
    union
    select distinct period
    from deliveries
    where status <> 'unroutable'
        and period is not null
),

as_of as (
    select max(as_of) as as_of from {{ ref('stg_audit__period_run') }}
),

routed as (
    select * from deliveries
    where status <> 'unroutable'
),

per_key as (
    select
        municipality_code,
        source,
        period,
        count(*) filter (where status = 'loaded') as n_loaded,
        count(*) filter (where status = 'quarantined') as n_quarantined,
        count(*) filter (where status = 'quarantined' and is_open) as n_quarantined_open,
        count(*) filter (where status = 'waiting' and is_open) as n_waiting,
        count(*) filter (
            where status in ('loaded', 'quarantined', 'superseded', 'duplicate', 'waiting')
        ) as n_files,
        string_agg(file_reason, '; ' order by delivery_id) filter (
            where status = 'quarantined' and is_open
        ) as quarantine_reasons,
        string_agg(file_reason, '; ' order by delivery_id) filter (
            where status = 'waiting' and is_open
        ) as waiting_reasons,
        max(received_at) as last_received_at
    from routed
    group by municipality_code, source, period
),

unroutable as (
    select
        coalesce(municipality_code, '(unknown)') as municipality_code,
        coalesce(source, '(unknown)') as source,
        coalesce(period, '(unknown)') as period,
        count(*) as n_unroutable,
        string_agg(file_reason, '; ' order by delivery_id) as unroutable_reasons,
        max(received_at) as last_received_at
    from deliveries
    where status = 'unroutable'
    group by 1, 2, 3
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

keyed as (
    select
        coalesce(grid.municipality_code, unroutable.municipality_code) as municipality_code,
        coalesce(grid.source, unroutable.source) as source,
        coalesce(grid.period, unroutable.period) as period,
        grid.municipality_code is not null as in_grid,
        grid.cadence,
        grid.delivers,
        grid.due_date,
        unroutable.n_unroutable,
        unroutable.unroutable_reasons,
        unroutable.last_received_at as unroutable_received_at
    from grid
    full outer join unroutable
        on unroutable.municipality_code = grid.municipality_code
        and unroutable.source = grid.source
        and unroutable.period = grid.period
),

counted as (
    select
        keyed.*,
        coalesce(per_key.n_files, 0) as n_files,
        coalesce(per_key.n_loaded, 0) as n_loaded,
        coalesce(per_key.n_quarantined, 0) as n_quarantined,
        coalesce(per_key.n_quarantined_open, 0) as n_quarantined_open,
        coalesce(per_key.n_waiting, 0) as n_waiting,
        coalesce(keyed.n_unroutable, 0) as n_unroutable_files,
        per_key.quarantine_reasons,
        per_key.waiting_reasons,
        greatest(per_key.last_received_at, keyed.unroutable_received_at) as last_received_at,
        case
            when keyed.in_grid
                then keyed.delivers
                and (keyed.cadence = 'monthly' or (keyed.cadence = 'yearly' and right(keyed.period, 2) = '12'))
                and as_of.as_of > keyed.due_date
            else false
        end as past_due
    from keyed
    cross join as_of
    left join per_key
        on per_key.municipality_code = keyed.municipality_code
        and per_key.source = keyed.source
        and per_key.period = keyed.period
),

judged as (
    select
        municipality_code,
        source,
        period,
        case
            when n_loaded > 0 and n_quarantined_open > 0 then 'partly_quarantined'
            when n_quarantined_open > 0 then 'quarantined'
            when n_waiting > 0 then 'waiting'
            when n_loaded > 0 then 'delivered'
            when n_unroutable_files > 0 then 'unroutable'
            when past_due then 'overdue'
            else 'not_delivered'
        end as status,
        delivers as source_delivered_by_municipality,
        case
            when not in_grid then null
            when not delivers then false
            when cadence = 'monthly' then true
            when cadence = 'yearly' then right(period, 2) = '12'
        end as delivery_expected,
        cadence,
        due_date,
        n_files + n_unroutable_files as n_files,
        n_loaded,
        n_quarantined,
        n_quarantined_open,
        n_waiting,
        n_unroutable_files as n_unroutable,
        nullif(concat_ws('; ',
            case when in_grid and not delivers then 'the municipality does not deliver this source (config)' end,
            quarantine_reasons,
            waiting_reasons,
            case when unroutable_reasons is not null then 'unroutable: ' || unroutable_reasons end,
            case
                when n_loaded = 0 and n_quarantined_open = 0 and n_waiting = 0 and past_due
                    then 'nothing received by the due date ' || due_date::text
            end
        ), '') as reason,
        last_received_at
    from counted
),

final as (
    select
        judged.*,
        quality_issues.quality_issue
    from judged
    left join quality_issues
        on quality_issues.municipality_code = judged.municipality_code
        and quality_issues.source = judged.source
        and quality_issues.period = judged.period
)

select * from final
