{#- Certified change in sick leave (follow-up − mean of the baseline years; reporting.absence_change), with
    the reason a change is withheld (a comparability break, named, or a value not reported). Suppressed
    when any figure it is computed from is suppressed in certified absence_unit_year; secondary suppression
    within municipality × metric × follow-up year against the '(average)' change. change_ci_low/high: the
    (1 − settings.significance_level) bootstrap interval over employees (reporting.absence_change_ci, written
    by trivsel.stats.absence) where every figure is from the payroll; published where the change is. -#}
with changes as (
    select * from {{ ref('absence_change') }}
),

unit_years as (
    select * from {{ ref('cert_absence_unit_year') }}
),

intervals as (
    select * from {{ source('trivsel_statistics', 'absence_change_ci') }}
),

touched as (
    select
        changes.*,
        exists (
            select 1
            from unit_years
            where unit_years.municipality_code = changes.municipality_code
                and unit_years.unit_name = changes.unit_name
                and unit_years.metric = changes.metric
                and unit_years.suppressed
                and (unit_years.year = changes.followup_year
                     or unit_years.year::text = any(string_to_array(changes.baseline_years, ', ')))
        ) as uses_suppressed_figure,
        intervals.change_ci_low,
        intervals.change_ci_high
    from changes
    left join intervals
        on intervals.municipality_code = changes.municipality_code
        and intervals.unit_name = changes.unit_name
        and intervals.metric = changes.metric
        and intervals.followup_year = changes.followup_year
        and intervals.baseline_years = changes.baseline_years
),

suppressed as (
    {{ secondary_suppression(
        'touched',
        partition_by=['municipality_code', 'metric', 'followup_year'],
        primary='uses_suppressed_figure',
        size='case when computable then 1 else 0 end',
        is_total='is_average'
    ) }}
),

final as (
    select
        municipality_code::text as municipality_code,
        unit_name::text as unit_name,
        is_average::boolean as is_average,
        metric::text as metric,
        baseline_years::text as baseline_years,
        followup_year::integer as followup_year,
        case when not suppressed then baseline_mean end::numeric(12, 4) as baseline_mean,
        case when not suppressed then followup_value end::numeric(12, 4) as followup_value,
        case when not suppressed then change end::numeric(12, 4) as change,
        case when not suppressed and change is not null then change_ci_low end::numeric(12, 4) as change_ci_low,
        case when not suppressed and change is not null then change_ci_high end::numeric(12, 4) as change_ci_high,
        computable::boolean as computable,
        reason::text as reason,
        break_id::text as break_id,
        suppressed::boolean as suppressed
    from suppressed
)

select * from final
