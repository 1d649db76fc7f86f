{#- Certified delivery coverage: per municipality × source × period, delivered, quarantined or not
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
        -- v1's value set predates 'overdue' (marts only): shown here as not_delivered
        (case when status = 'overdue' then 'not_delivered' else status end)::text as status,
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
)

select * from final
