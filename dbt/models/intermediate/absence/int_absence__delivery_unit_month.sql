-- One row per payroll delivery × unit × month: the sums absence_unit_month adds up per unit and month, kept
-- per delivery so they can be maintained incrementally like int_absence__employee_month
-- (macros/incremental_by_delivery.sql): a run adds the deliveries not yet here; the pre-hook first deletes
-- the deliveries whose (delivery_id, reference_fingerprint) is no longer in int_absence__employee_month.
-- An employee is in one delivery per unit and month (the unique_combination test of
-- int_absence__employee_month), so employee counts of deliveries add up.
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='delivery_id',
        on_schema_change='fail',
        indexes=[{'columns': ['delivery_id']}],
        pre_hook="{% if is_incremental() %}{{ delete_stale_deliveries(this, delivery_fingerprints(ref('int_absence__employee_month'))) }}{% endif %}"
    )
}}

with employee_months as (
    select * from {{ ref('int_absence__employee_month') }}
    {% if is_incremental() -%}
    where {{ new_deliveries_filter(this, delivery_fingerprints(ref('int_absence__employee_month'))) }}
    {%- endif %}
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
