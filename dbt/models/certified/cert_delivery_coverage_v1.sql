{#- Certified delivery coverage v1 (superseded by v2, kept for its readers): per municipality × source × period, delivered, quarantined or not
    delivered (never zero). The file counts count files, not people, so they are not small cells and carry
    no n_ prefix; suppressed is always false here and kept for the uniform certified shape. -#}
with coverage as (
    select * from {{ ref('delivery_coverage') }}
),

final as (
    select
        municipality_code::text as municipality_code,
        source::text as source,
        period::text as period,
        -- v1's value set (delivered, quarantined, not_delivered) predates overdue, waiting, partly_quarantined
        -- and unroutable: v2 (the latest) has them all. Here: partly_quarantined is delivered (v1's "a loaded
        -- delivery"), the others nothing loaded, i.e. not_delivered.
        (case
            when status = 'partly_quarantined' then 'delivered'
            when status in ('overdue', 'waiting', 'unroutable') then 'not_delivered'
            else status
        end)::text as status,
        source_delivered_by_municipality::boolean as source_delivered_by_municipality,
        delivery_expected::boolean as delivery_expected,
        cadence::text as cadence,
        n_files::integer as files_received,
        n_loaded::integer as deliveries_loaded,
        n_quarantined::integer as deliveries_quarantined,
        reason::text as reason,
        last_received_at::timestamptz as last_received_at,
        false as suppressed
    from coverage
    -- keys only unroutable files have (an unknown municipality or source folder) were never v1 rows
    where source_delivered_by_municipality is not null
)

select * from final
