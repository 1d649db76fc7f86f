with source as (
    {{ loaded_rows('raw', 'incident_year_count') }}
),

final as (
    select
        delivery_id,
        municipality_code,
        period,
        source_row,
        'incident_yearly_aggregate'::text as scheme,
        year,
        incident_type,
        n_incidents,
        note
    from source
)

select * from final
