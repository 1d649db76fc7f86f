-- Payroll extract rows of loaded deliveries (one per employee × month × absence code).
with source as (
    {{ loaded_rows('raw', 'hr_payroll_absence') }}
),

final as (
    select
        delivery_id,
        municipality_code,
        period,
        source_row,
        employee_pseudonym,
        unit_text,
        month_start,
        nullif(upper(trim(absence_code)), '') as absence_code,
        absence_text,
        absence_hours,
        contractual_hours,
        fte
    from source
)

select * from final
