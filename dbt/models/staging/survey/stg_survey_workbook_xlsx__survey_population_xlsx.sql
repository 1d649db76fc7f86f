with source as (
    {{ loaded_rows('raw', 'survey_population_xlsx') }}
),

final as (
    select
        delivery_id,
        municipality_code,
        period,
        source_row,
        unit_name,
        wave,
        target_population
    from source
)

select * from final
