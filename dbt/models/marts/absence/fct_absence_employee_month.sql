-- One row per (pseudonymised) employee × unit × month from the payroll extracts: the grain the sick-leave
-- statistics (plugins/trivsel/stats/absence.py) test on. No clear employee number exists anywhere.
with employee_months as (
    select * from {{ ref('int_absence__employee_month') }}
),

final as (
    select
        municipality_code,
        unit_name,
        month_start,
        to_char(month_start, 'YYYY-MM') as month,
        employee_pseudonym,
        contractual_hours,
        fte,
        sick_hours,
        sick_days,
        other_absence_hours,
        delivery_id
    from employee_months
)

select * from final
