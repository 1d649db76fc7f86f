-- Change in sick leave per unit and '(average)' × metric × follow-up year: follow-up value − mean of the
-- baseline years (the report's rule; negative = less sick leave). Baseline and follow-up years are the
-- dbt vars absence_baseline_years and absence_followup_years (the report's: 2010-2012 and 2013).
-- Withheld (computable = false, change null) across a recorded comparability break, naming the break, or
-- when a baseline or follow-up value is not reported.
{%- set baseline_years = var('absence_baseline_years') %}
{%- set followup_years = var('absence_followup_years') %}
with unit_years as (
    select * from {{ ref('absence_unit_year') }}
),

breaks as (
    select * from {{ ref('int_absence__breaks') }}
),

followup_years as (
    select unnest(array[{{ followup_years | join(', ') }}]::int[]) as followup_year
),

series as (
    select distinct municipality_code, unit_name, is_average, metric
    from unit_years
),

baseline as (
    select
        municipality_code,
        unit_name,
        metric,
        avg(value) filter (where value_status = 'reported') as baseline_mean,
        count(*) filter (where value_status = 'reported') as n_baseline_reported,
        string_agg(year::text, ', ' order by year) filter (where value_status = 'reported')
            as baseline_years_reported
    from unit_years
    where year in ({{ baseline_years | join(', ') }})
    group by municipality_code, unit_name, metric
),

keyed as (
    select
        series.municipality_code,
        series.unit_name,
        series.is_average,
        series.metric,
        followup_years.followup_year
    from series
    cross join followup_years
),

joined as (
    select
        keyed.*,
        baseline.baseline_mean,
        coalesce(baseline.n_baseline_reported, 0) as n_baseline_reported,
        baseline.baseline_years_reported,
        followup.value as followup_value,
        coalesce(followup.value_status, 'not_delivered') as followup_status,
        (
            select string_agg(
                'comparability break ' || breaks.break_id || ' (' || breaks.break_year || '): '
                    || breaks.description_en,
                '; ' order by breaks.break_year, breaks.break_id
            )
            from breaks
            where breaks.municipality_code = keyed.municipality_code
                and (breaks.unit_name is null or breaks.unit_name = keyed.unit_name)
                and breaks.break_year > {{ baseline_years | min }}
                and breaks.break_year <= keyed.followup_year
        ) as break_reason,
        (
            select string_agg(breaks.break_id, ', ' order by breaks.break_year, breaks.break_id)
            from breaks
            where breaks.municipality_code = keyed.municipality_code
                and (breaks.unit_name is null or breaks.unit_name = keyed.unit_name)
                and breaks.break_year > {{ baseline_years | min }}
                and breaks.break_year <= keyed.followup_year
        ) as break_id
    from keyed
    left join baseline
        on baseline.municipality_code = keyed.municipality_code
        and baseline.unit_name = keyed.unit_name
        and baseline.metric = keyed.metric
    left join unit_years as followup
        on followup.municipality_code = keyed.municipality_code
        and followup.unit_name = keyed.unit_name
        and followup.metric = keyed.metric
        and followup.year = keyed.followup_year
),

judged as (
    select
        joined.*,
        case
            when break_reason is not null then break_reason
            when followup_status <> 'reported'
                then 'follow-up year ' || followup_year || ' is ' || followup_status
            when n_baseline_reported < {{ baseline_years | length }}
                then 'baseline years reported: ' || coalesce(baseline_years_reported, 'none')
                    || ' of {{ baseline_years | join(", ") }}'
        end as reason
    from joined
),

final as (
    select
        municipality_code,
        unit_name,
        is_average,
        metric,
        '{{ baseline_years | join(", ") }}' as baseline_years,
        followup_year,
        round(baseline_mean, 4) as baseline_mean,
        followup_value,
        case when reason is null then round(followup_value - baseline_mean, 4) end as change,
        reason is null as computable,
        reason,
        break_id
    from judged
)

select * from final
