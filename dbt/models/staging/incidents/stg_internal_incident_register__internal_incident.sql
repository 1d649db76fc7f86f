with source as (
    {{ loaded_rows('raw', 'internal_incident') }}
),

final as (
    select
        delivery_id,
        municipality_code,
        period,
        source_row,
        'internal_incident_register'::text as scheme,
        incident_id,
        event_date,
        extract(year from event_date)::integer as year,
        unit_label,
        incident_type,
        subtype,
        description
    from source
)

select * from final
