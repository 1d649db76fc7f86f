-- HR statistics workbook figures of loaded deliveries, as delivered and taken apart.
with source as (
    {{ loaded_rows('raw', 'hr_unit_workbook_value') }}
),

final as (
    select
        delivery_id,
        municipality_code,
        period,
        source_row,
        sheet_name,
        cell,
        source_system,
        unit_text,
        year,
        month,
        month is null as is_year_figure,
        value_text,
        marker,
        value_numeric,
        value_in_parentheses,
        second_value_numeric,
        second_value_in_parentheses
    from source
)

select * from final
