with source as (
    -- in a DAG run: the statuses the run pinned at its gate (macros/pinned_deliveries.sql)
    {{ pinned_deliveries() }}
),

final as (
    select
        delivery_id,
        municipality_code,
        source,
        scheme,
        period,
        file_name,
        checksum_sha256,
        size_bytes,
        status,
        reason,
        rows_loaded,
        received_at,
        decided_at
    from source
)

select * from final
