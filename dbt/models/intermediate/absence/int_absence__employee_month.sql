-- One row per employee × month from the payroll extract: contractual hours, FTE and absence hours by kind.
-- Sick hours are the hours of the codes the absence_codes seed counts as sick leave (own sickness, full
-- and partial). Employees without absence are here too, with 0 sick hours: they are the denominator.
-- Incremental by delivery (macros/incremental_by_delivery.sql): a run adds the loaded deliveries not yet in
-- the table; the pre-hook first deletes deliveries no longer loaded (superseded, removed) and deliveries
-- derived with other reference data (reference_fingerprint: absence_codes, int_units, hours per day).
{{ config(**incremental_by_delivery_config("absence_payroll_deliveries()")) }}

with deliveries as (
    {{ absence_payroll_deliveries() }}
),

payroll as (
    select * from {{ ref('stg_hr_payroll_csv__hr_payroll_absence') }}
    {{ only_new_deliveries('select * from deliveries') }}
),

codes as (
    select * from {{ ref('absence_codes') }}
    where scheme = 'hr_payroll_csv'
),

units as (
    select * from {{ ref('int_units') }}
),

coded as (
    select
        payroll.*,
        coalesce(codes.counts_as_sick_leave, false) as counts_as_sick_leave,
        codes.category
    from payroll
    left join codes
        on codes.absence_code = payroll.absence_code
),

per_employee_month as (
    select
        municipality_code,
        period,
        delivery_id,
        unit_text,
        employee_pseudonym,
        month_start,
        max(contractual_hours) as contractual_hours,
        max(fte) as fte,
        sum(absence_hours) filter (where counts_as_sick_leave) as sick_hours,
        sum(absence_hours) filter (where category = 'own_sickness') as own_sickness_hours,
        sum(absence_hours) filter (where category = 'own_sickness_partial') as partial_sickness_hours,
        sum(absence_hours) filter (where not counts_as_sick_leave) as other_absence_hours,
        sum(absence_hours) as absence_hours
    from coded
    group by municipality_code, period, delivery_id, unit_text, employee_pseudonym, month_start
),

final as (
    select
        per_employee_month.municipality_code,
        units.unit_name,
        per_employee_month.unit_text,
        per_employee_month.period,
        per_employee_month.delivery_id,
        per_employee_month.month_start,
        per_employee_month.employee_pseudonym,
        per_employee_month.contractual_hours,
        per_employee_month.fte,
        coalesce(per_employee_month.sick_hours, 0) as sick_hours,
        coalesce(per_employee_month.own_sickness_hours, 0) as own_sickness_hours,
        coalesce(per_employee_month.partial_sickness_hours, 0) as partial_sickness_hours,
        coalesce(per_employee_month.other_absence_hours, 0) as other_absence_hours,
        coalesce(per_employee_month.absence_hours, 0) as absence_hours,
        coalesce(per_employee_month.sick_hours, 0) / {{ var('absence_hours_per_day', 7.4) }} as sick_days,
        deliveries.reference_fingerprint
    from per_employee_month
    inner join deliveries
        on deliveries.delivery_id = per_employee_month.delivery_id
    left join units
        on units.municipality_code = per_employee_month.municipality_code
        and lower(units.name_as_registered) = lower(trim(per_employee_month.unit_text))
)

select * from final
