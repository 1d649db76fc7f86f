with source as (
    {{ loaded_rows('raw', 'use_of_force_count') }}
),

final as (
    select
        delivery_id,
        municipality_code,
        period,
        source_row,
        'use_of_force_yearly'::text as scheme,
        year,
        n_use_of_force,
        n_non_participant,
        note
    from source
)

select * from final
