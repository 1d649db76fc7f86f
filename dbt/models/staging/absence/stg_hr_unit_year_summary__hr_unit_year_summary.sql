-- Unit-year summary rows of loaded deliveries (one per unit × year × metric label).
with source as (
    {{ loaded_rows('raw', 'hr_unit_year_summary') }}
),

final as (
    select
        delivery_id,
        municipality_code,
        period,
        source_row,
        unit_text,
        year,
        metric_label,
        value_text,
        marker,
        value_numeric,
        value_in_parentheses,
        second_value_numeric,
        second_value_in_parentheses,
        fte
    from source
)

select * from final
