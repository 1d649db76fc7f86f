{#- Certified change in the incident rate between the baseline years and the follow-up year
    (reporting.incident_rate_change, written by trivsel.stats.incidents: exact Poisson rate test), with the
    caveats that withhold a conclusion: a comparability break crossed (named), registers not delivered.
    Suppressed when the baseline or follow-up count is 1 … threshold−1, or when secondary suppression in
    cert_incident_cells hid it; then counts, rates, ratio and p-value are null. -#}
with changes as (
    select * from {{ source('trivsel_statistics', 'incident_rate_change') }}
),

totals as (
    select municipality_code, register, bool_or(suppressed) as suppressed
    from {{ ref('cert_incident_cells') }}
    where is_total
    group by municipality_code, register
),

final as (
    select
        changes.municipality_code::text as municipality_code,
        changes.register::text as register,
        changes.baseline_years::text as baseline_years,
        changes.followup_years::text as followup_years,
        changes.n_baseline_years::integer as baseline_years_delivered,
        changes.n_followup_years::integer as followup_years_delivered,
        changes.status::text as status,
        case when not totals.suppressed then changes.count_baseline end::integer as n_baseline,
        case when not totals.suppressed then changes.count_followup end::integer as n_followup,
        changes.exposure_unit::text as exposure_unit,
        case when not totals.suppressed then changes.rate_baseline end::double precision as rate_baseline,
        case when not totals.suppressed then changes.rate_followup end::double precision as rate_followup,
        changes.rate_unit::text as rate_unit,
        case when not totals.suppressed then changes.rate_ratio end::double precision as rate_ratio,
        case when not totals.suppressed then changes.rate_ratio_ci_low end::double precision as rate_ratio_ci_low,
        case when not totals.suppressed then changes.rate_ratio_ci_high end::double precision as rate_ratio_ci_high,
        case when not totals.suppressed then changes.p_value end::double precision as p_value,
        case when not totals.suppressed then changes.significant end::boolean as significant,
        changes.crosses_break::boolean as crosses_break,
        changes.break_id::text as break_id,
        changes.break_description::text as break_description,
        changes.note::text as note,
        totals.suppressed::boolean as suppressed
    from changes
    inner join totals
        on totals.municipality_code = changes.municipality_code
        and totals.register = changes.register
)

select * from final
