{#- Certified delivery coverage v2: per municipality × source × period, the statuses of marts.delivery_coverage
    as they are: delivered, partly_quarantined (some files loaded, another rejected: incomplete),
    quarantined (files came, none loaded), waiting, overdue, unroutable and not_delivered (never zero).
    Four different facts are never merged (issue 12 §5). The file counts count files, not people, so they are
    not small cells and carry no n_ prefix; suppressed is always false here and kept for the uniform shape. -#}
with coverage as (
    select * from {{ ref('delivery_coverage') }}
),

final as (
    select
        municipality_code::text as municipality_code,
        source::text as source,
        period::text as period,
        status::text as status,
        source_delivered_by_municipality::boolean as source_delivered_by_municipality,
        delivery_expected::boolean as delivery_expected,
        cadence::text as cadence,
        n_files::integer as files_received,
        n_loaded::integer as deliveries_loaded,
        n_quarantined::integer as deliveries_quarantined,
        n_quarantined_open::integer as deliveries_quarantined_open,
        n_waiting::integer as deliveries_waiting,
        n_unroutable::integer as files_unroutable,
        reason::text as reason,
        last_received_at::timestamptz as last_received_at,
        false as suppressed
    from coverage
)

select * from final
