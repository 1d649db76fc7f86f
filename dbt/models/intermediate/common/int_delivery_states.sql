-- Every delivery in audit.delivery with whether it still stands open: a quarantined or waiting delivery is
-- open until a later delivery of the same municipality × source × period and scheme (any scheme when the
-- file matched none) is loaded. Only open ones make a key partly_quarantined, quarantined or waiting
-- (marts.delivery_coverage, int_incident_spine, the absence marts): a corrected file closes them.
-- file_reason names the file, so a reader sees which file and why (loader reasons already start with it).
with deliveries as (
    select * from {{ ref('stg_audit__delivery') }}
),

final as (
    select
        deliveries.delivery_id,
        deliveries.municipality_code,
        deliveries.source,
        deliveries.scheme,
        deliveries.period,
        deliveries.file_name,
        deliveries.status,
        deliveries.reason,
        deliveries.received_at,
        deliveries.status in ('quarantined', 'waiting')
        and not exists (
            select 1
            from deliveries as later
            where later.municipality_code = deliveries.municipality_code
                and later.source = deliveries.source
                and later.period = deliveries.period
                and (deliveries.scheme is null or later.scheme = deliveries.scheme)
                and later.status in ('loaded', 'superseded')
                and later.delivery_id > deliveries.delivery_id
        ) as is_open,
        case
            when deliveries.reason like deliveries.file_name || '%' then deliveries.reason
            else deliveries.file_name || ': ' || coalesce(deliveries.reason, deliveries.status)
        end as file_reason
    from deliveries
)

select * from final
