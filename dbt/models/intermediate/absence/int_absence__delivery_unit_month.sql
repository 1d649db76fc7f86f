-- One row per payroll delivery × unit × month: the sums absence_unit_month adds up per unit and month, kept
-- per delivery so they can be maintained incrementally like int_absence__employee_month
-- (macros/incremental_by_delivery.sql): a run adds the deliveries not yet here; the pre-hook first deletes
-- the deliveries whose (delivery_id, reference_fingerprint) is no longer in int_absence__employee_month.
-- An employee is in one delivery per unit and month (the unique_combination test of
-- int_absence__employee_month), so employee counts of deliveries add up.
{{ config(**incremental_by_delivery_config("delivery_fingerprints(ref('int_absence__employee_month'))")) }}

with employee_months as (
    select * from {{ ref('int_absence__employee_month') }}
    {{ only_new_deliveries(delivery_fingerprints(ref('int_absence__employee_month'))) }}
),

final as (
    select
        municipality_code,
        unit_name,
        month_start,
        delivery_id,
        reference_fingerprint,
        count(distinct employee_pseudonym) as n_employees,
        sum(sick_hours) as sick_hours,
        sum(contractual_hours) as contractual_hours,
        sum(fte) as fte,
        sum(sick_days) as sick_days
    from employee_months
    group by municipality_code, unit_name, month_start, delivery_id, reference_fingerprint
)

select * from final
