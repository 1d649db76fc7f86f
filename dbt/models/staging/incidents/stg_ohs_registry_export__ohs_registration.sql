with source as (
    {{ loaded_rows('raw', 'ohs_registration') }}
),

final as (
    select
        delivery_id,
        municipality_code,
        period,
        source_row,
        'ohs_registry_export'::text as scheme,
        case_id,
        event_date,
        extract(year from event_date)::integer as year,
        unit_label,
        event_type,
        injury_type,
        absence_label,
        description
    from source
)

select * from final
