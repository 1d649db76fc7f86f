-- Change in sick leave per unit and '(average)' × metric × follow-up year: follow-up value − mean of the
-- baseline years (the report's rule; negative = less sick leave). Baseline and follow-up years are
-- settings.baseline_years and followup_years of config/municipalities.yml (macro configured_years; the dbt
-- vars absence_baseline_years / absence_followup_years only where a setting is absent; the report's:
-- 2010-2012 and 2013).
-- Where a municipality's sick-leave data start later than the configured baseline years (its first year in
-- absence_unit_year), the baseline is the configured years from that first year on, and baseline_years says
-- which; with none of them delivered, no change. Withheld (computable = false, change null, reason) across a
-- recorded comparability break, naming the break; when a baseline or follow-up value is not reported; and
-- when a figure it would be computed from is a part year (fewer than 12 months of payroll).
-- A year without a value says why: quarantined (a file of the municipality's sick leave for the year came
-- and was rejected), waiting, or not_delivered (nothing came): delivered-but-rejected is never called "not
-- delivered" (int_delivery_states, open files only).
with unit_years as (
    select * from {{ ref('absence_unit_year') }}
),

breaks as (
    select * from {{ ref('int_absence__breaks') }}
),

-- Per municipality and year: what became of its sick-leave files of that year's periods.
delivery_years as (
    select
        municipality_code,
        left(period, 4)::int as year,
        case
            when bool_or(status = 'quarantined' and is_open) and bool_or(status = 'loaded')
                then 'partly_quarantined'
            when bool_or(status = 'quarantined' and is_open) then 'quarantined'
            when bool_or(status = 'waiting' and is_open) then 'waiting'
        end as delivery_status
    from {{ ref('int_delivery_states') }}
    where source = 'hr_absence'
        and period ~ '^[0-9]{4}-[0-9]{2}$'
    group by municipality_code, left(period, 4)::int
),

followup_years as (
    select unnest({{ configured_years('followup_years', 'absence_followup_years') }}) as followup_year
),

configured_baseline as (
    select unnest({{ configured_years('baseline_years', 'absence_baseline_years') }}) as year
),

municipality_baseline as (
    select
        first_years.municipality_code,
        first_years.first_year,
        array_agg(configured_baseline.year order by configured_baseline.year)
            filter (where configured_baseline.year >= first_years.first_year) as years
    from (
        select municipality_code, min(year) as first_year
        from unit_years
        group by municipality_code
    ) as first_years
    cross join configured_baseline
    group by first_years.municipality_code, first_years.first_year
),

series as (
    select distinct municipality_code, unit_name, is_average, metric
    from unit_years
),

baseline as (
    select
        unit_years.municipality_code,
        unit_years.unit_name,
        unit_years.metric,
        avg(unit_years.value) filter (where unit_years.value_status = 'reported') as baseline_mean,
        count(*) filter (where unit_years.value_status = 'reported') as n_baseline_reported,
        string_agg(unit_years.year::text, ', ' order by unit_years.year)
            filter (where unit_years.value_status = 'reported') as baseline_years_reported,
        string_agg(unit_years.year || ' (' || unit_years.months_delivered || ' of 12 months)', ', '
            order by unit_years.year) filter (where unit_years.is_part_year) as baseline_part_years
    from unit_years
    inner join municipality_baseline
        on municipality_baseline.municipality_code = unit_years.municipality_code
        and unit_years.year = any(municipality_baseline.years)
    group by unit_years.municipality_code, unit_years.unit_name, unit_years.metric
),

keyed as (
    select
        series.municipality_code,
        series.unit_name,
        series.is_average,
        series.metric,
        followup_years.followup_year,
        municipality_baseline.first_year,
        coalesce(array_length(municipality_baseline.years, 1), 0) as n_baseline_years,
        coalesce(array_to_string(municipality_baseline.years, ', '), 'none') as baseline_years,
        coalesce(municipality_baseline.years[1], (select min(year) from configured_baseline)) as first_baseline_year
    from series
    cross join followup_years
    inner join municipality_baseline
        on municipality_baseline.municipality_code = series.municipality_code
),

joined as (
    select
        keyed.*,
        baseline.baseline_mean,
        coalesce(baseline.n_baseline_reported, 0) as n_baseline_reported,
        baseline.baseline_years_reported,
        baseline.baseline_part_years,
        followup.value as followup_value,
        coalesce(followup.value_status, followup_delivery.delivery_status, 'not_delivered') as followup_status,
        followup.is_part_year as followup_is_part_year,
        followup.months_delivered as followup_months_delivered,
        (
            select string_agg(delivery_years.year || ' ' || delivery_years.delivery_status, ', '
                              order by delivery_years.year)
            from delivery_years
            where delivery_years.municipality_code = keyed.municipality_code
                and delivery_years.year in (select year from configured_baseline)
                and delivery_years.delivery_status is not null
                and delivery_years.year::text <> all(
                    string_to_array(coalesce(baseline.baseline_years_reported, ''), ', '))
        ) as baseline_delivery_statuses,
        (
            select string_agg(
                'comparability break ' || breaks.break_id || ' (' || breaks.break_year || '): '
                    || breaks.description_en,
                '; ' order by breaks.break_year, breaks.break_id
            )
            from breaks
            where breaks.municipality_code = keyed.municipality_code
                and (breaks.unit_name is null or breaks.unit_name = keyed.unit_name)
                and breaks.break_year > keyed.first_baseline_year
                and breaks.break_year <= keyed.followup_year
        ) as break_reason,
        (
            select string_agg(breaks.break_id, ', ' order by breaks.break_year, breaks.break_id)
            from breaks
            where breaks.municipality_code = keyed.municipality_code
                and (breaks.unit_name is null or breaks.unit_name = keyed.unit_name)
                and breaks.break_year > keyed.first_baseline_year
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
    left join delivery_years as followup_delivery
        on followup_delivery.municipality_code = keyed.municipality_code
        and followup_delivery.year = keyed.followup_year
),

judged as (
    select
        joined.*,
        case
            -- a break, and a follow-up year whose files came but were rejected or held: both are said
            when break_reason is not null and followup_status in ('quarantined', 'partly_quarantined', 'waiting')
                then break_reason || '; follow-up year ' || followup_year || ' is ' || followup_status
            when break_reason is not null then break_reason
            when followup_status <> 'reported'
                then 'follow-up year ' || followup_year || ' is ' || followup_status
            when n_baseline_years = 0
                then 'no baseline year delivered: sick-leave data start in ' || first_year
                    || ', after the baseline years '
                    || (select string_agg(year::text, ', ' order by year) from configured_baseline)
            when followup_is_part_year
                then 'follow-up year ' || followup_year || ' is a part year (' || followup_months_delivered
                    || ' of 12 months delivered)'
            when baseline_part_years is not null
                then 'baseline part year: ' || baseline_part_years || ' delivered'
            when n_baseline_reported < n_baseline_years
                then 'baseline years reported: ' || coalesce(baseline_years_reported, 'none')
                    || ' of ' || baseline_years
                    || coalesce(' (' || baseline_delivery_statuses || ')', '')
        end as reason
    from joined
),

final as (
    select
        municipality_code,
        unit_name,
        is_average,
        metric,
        baseline_years,
        followup_year,
        round(baseline_mean, 4) as baseline_mean,
        followup_value,
        case when reason is null then round(followup_value - baseline_mean, 4) end as change,
        reason is null as computable,
        reason,
        break_id,
        followup_status
    from judged
)

select * from final
