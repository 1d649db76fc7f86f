with source as (
    select * from {{ source('audit', 'delivery') }}
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
