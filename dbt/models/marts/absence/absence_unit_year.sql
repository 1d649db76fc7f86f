-- Sick leave per unit, year and metric as delivered (Tables 7.6-7.9), plus one '(average)' row per
-- municipality × year × metric: the unweighted mean over the units whose value is 'reported' (the report's
-- rule), and value_incl_excluded with the excluded figures added (Fredericia 2012: 6.91 and 9.48).
-- comparable_with_previous is false in a year a recorded comparability break starts (for the whole
-- municipality, or for the unit), null where there is no earlier year.
-- Figures computed from the monthly payroll (int_absence__payroll_unit_year) join the delivered yearly
-- figures: a yearly scheme (hr_unit_year_summary, the hr_unit_workbook year sheet) takes precedence for the
-- municipality × year × metric it delivers, so an average is never a mix of delivered and computed unit
-- figures and the delivered figures stay exactly as delivered; the payroll fills the municipality-years
-- and metrics no yearly scheme delivers. months_delivered: months of payroll behind the figure (12 for a
-- yearly scheme); is_part_year when fewer than 12.
with delivered_figures as (
    select * from {{ ref('int_absence__unit_year_figures') }}
),

payroll_figures as (
    select * from {{ ref('int_absence__payroll_unit_year') }}
),

figures as (
    select
        municipality_code, unit_name, year, metric, value_text, value, value_status, excluded_value, fte,
        source_scheme, source_system, 12 as months_delivered
    from delivered_figures

    union all

    select
        municipality_code, unit_name, year, metric, value_text, value, value_status, excluded_value, fte,
        source_scheme, source_system, months_delivered
    from payroll_figures
    where not exists (
        select 1
        from delivered_figures
        where delivered_figures.municipality_code = payroll_figures.municipality_code
            and delivered_figures.year = payroll_figures.year
            and delivered_figures.metric = payroll_figures.metric
    )
),

breaks as (
    select * from {{ ref('int_absence__breaks') }}
),

unit_rows as (
    select
        municipality_code,
        unit_name,
        false as is_average,
        year,
        metric,
        value,
        value_status,
        value_text,
        excluded_value,
        case when value_status in ('reported', 'excluded') then value end as value_incl_excluded,
        null::bigint as n_units_reported,
        null::bigint as n_units_excluded,
        fte,
        source_scheme,
        source_system,
        months_delivered
    from figures
),

average_rows as (
    select
        municipality_code,
        '(average)' as unit_name,
        true as is_average,
        year,
        metric,
        avg(value) filter (where value_status = 'reported') as value,
        case when count(*) filter (where value_status = 'reported') > 0 then 'reported' else 'not_reported' end
            as value_status,
        null::text as value_text,
        null::numeric as excluded_value,
        avg(value) filter (where value_status in ('reported', 'excluded')) as value_incl_excluded,
        count(*) filter (where value_status = 'reported') as n_units_reported,
        count(*) filter (where value_status = 'excluded') as n_units_excluded,
        sum(fte) as fte,
        string_agg(distinct source_scheme, ', ') as source_scheme,
        string_agg(distinct source_system, ', ') as source_system,
        -- the average is a part year when any of its units is
        min(months_delivered) as months_delivered
    from figures
    group by municipality_code, year, metric
),

all_rows as (
    select * from unit_rows
    union all
    select * from average_rows
),

with_breaks as (
    select
        all_rows.*,
        (
            select string_agg(breaks.break_id, ', ' order by breaks.break_id)
            from breaks
            where breaks.municipality_code = all_rows.municipality_code
                and breaks.break_year = all_rows.year
                and (breaks.unit_name is null or breaks.unit_name = all_rows.unit_name)
        ) as break_id,
        -- an earlier year of the same series: the series' first year is before this one (one window over
        -- the rows, where a correlated exists over this CTE rescanned it for every row); a null key
        -- matches no earlier row, as an equality would
        all_rows.municipality_code is not null and all_rows.unit_name is not null and all_rows.metric is not null
            and min(all_rows.year) over (
                partition by all_rows.municipality_code, all_rows.unit_name, all_rows.metric
            ) < all_rows.year as has_earlier_year
    from all_rows
),

final as (
    select
        municipality_code,
        unit_name,
        is_average,
        year,
        metric,
        round(value, 4) as value,
        value_status,
        value_text,
        excluded_value,
        round(value_incl_excluded, 4) as value_incl_excluded,
        n_units_reported,
        n_units_excluded,
        fte,
        source_scheme,
        source_system,
        months_delivered::integer as months_delivered,
        months_delivered < 12 as is_part_year,
        case
            when break_id is not null then false
            when has_earlier_year then true
        end as comparable_with_previous,
        break_id
    from with_breaks
)

select * from final
