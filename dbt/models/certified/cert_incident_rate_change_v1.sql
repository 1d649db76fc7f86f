{#- Certified change in the incident rate between the baseline years and the follow-up year
    (reporting.incident_rate_change, written by trivsel.stats.incidents: exact Poisson rate test), with the
    caveats that withhold a conclusion: a comparability break crossed (named), registers not delivered.
    Episode counts count events, not persons (docs/disclosure.md): they are published, as the evaluation
    printed them (small ones flagged in incident_episode_year v2); suppressed is false, kept for the uniform
    certified shape. -#}
with changes as (
    select * from {{ source('trivsel_statistics', 'incident_rate_change') }}
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
        changes.count_baseline::integer as n_baseline,
        changes.count_followup::integer as n_followup,
        changes.exposure_unit::text as exposure_unit,
        changes.rate_baseline::double precision as rate_baseline,
        changes.rate_followup::double precision as rate_followup,
        changes.rate_unit::text as rate_unit,
        changes.rate_ratio::double precision as rate_ratio,
        changes.rate_ratio_ci_low::double precision as rate_ratio_ci_low,
        changes.rate_ratio_ci_high::double precision as rate_ratio_ci_high,
        changes.p_value::double precision as p_value,
        changes.significant::boolean as significant,
        changes.crosses_break::boolean as crosses_break,
        changes.break_id::text as break_id,
        changes.break_description::text as break_description,
        changes.note::text as note,
        false as suppressed
    from changes
)

select * from final
