-- One row per (pseudonymised) employee × unit × month from the payroll extracts: the grain the sick-leave
-- statistics (plugins/trivsel/stats/absence.py) test on. No clear employee number exists anywhere.
-- Incremental by delivery, following int_absence__employee_month (macros/incremental_by_delivery.sql): a
-- run adds its deliveries not yet here; the pre-hook first deletes the deliveries whose
-- (delivery_id, reference_fingerprint) is no longer in it.
-- Person-level: built in schema `person`, which only the transformer reads (plugins/trivsel/roles.py);
-- bi_reader, evaluator and the municipality roles read the aggregates in marts.
{{ config(schema='person', **incremental_by_delivery_config("delivery_fingerprints(ref('int_absence__employee_month'))")) }}

with employee_months as (
    select * from {{ ref('int_absence__employee_month') }}
    {{ only_new_deliveries(delivery_fingerprints(ref('int_absence__employee_month'))) }}
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
        delivery_id,
        reference_fingerprint
    from employee_months
)

select * from final
