with source as (
    {{ loaded_rows('raw', 'reported_accident_count') }}
),

final as (
    select
        delivery_id,
        municipality_code,
        period,
        source_row,
        'reported_accidents_by_unit'::text as scheme,
        unit_label,
        year,
        injury_effect,
        n_reported
    from source
)

select * from final
