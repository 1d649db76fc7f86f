-- One row per unit × year × metric computed from the monthly payroll extracts (hr_payroll_csv), with the
-- same three metrics the unit-year summary delivers (seed absence_metrics; docs/sources/hr_payroll_csv.md,
-- "Metrics"):
--   pct_whole_group   = 100 × sick hours of the year / contractual hours of the year
--   pct_per_employee  = pct_whole_group / the unit's FTE (årsværk) in the year
--   days_per_employee = sick days (sick hours / 7.4) of the year / the unit's FTE (årsværk) in the year
-- The unit's FTE in the year is the mean of its monthly FTE over the months delivered (= the sum of the
-- twelve monthly FTE / 12 for a full year). months_delivered counts the months with payroll rows for the
-- unit: fewer than 12 is a part year (absence_unit_year.is_part_year; reporting.absence_change withholds a
-- change computed from one). Reads the per-delivery sums of int_absence__delivery_unit_month (incremental),
-- added up per unit and month as absence_unit_month does.
with delivery_unit_months as (
    select * from {{ ref('int_absence__delivery_unit_month') }}
),

units as (
    select distinct municipality_code, unit_name, valid_from, valid_to
    from {{ ref('int_units') }}
),

unit_months as (
    select
        municipality_code,
        unit_name,
        month_start,
        sum(sick_hours) as sick_hours,
        sum(contractual_hours) as contractual_hours,
        sum(fte) as fte,
        sum(sick_days) as sick_days,
        max(delivery_id) as delivery_id
    from delivery_unit_months
    group by municipality_code, unit_name, month_start
),

unit_years as (
    select
        municipality_code,
        unit_name,
        extract(year from month_start)::int as year,
        count(*)::int as months_delivered,
        sum(sick_hours) as sick_hours,
        sum(contractual_hours) as contractual_hours,
        sum(sick_days) as sick_days,
        sum(fte) / count(*) as fte,
        max(delivery_id) as delivery_id,
        to_char(max(month_start), 'YYYY-MM') as period
    from unit_months
    group by municipality_code, unit_name, extract(year from month_start)
),

figures as (
    select
        unit_years.*,
        100 * unit_years.sick_hours / nullif(unit_years.contractual_hours, 0) as pct_whole_group,
        units.valid_from <= make_date(unit_years.year, 12, 31)
            and coalesce(units.valid_to, 'infinity'::date) >= make_date(unit_years.year, 1, 1) as unit_valid
    from unit_years
    left join units
        on units.municipality_code = unit_years.municipality_code
        and units.unit_name = unit_years.unit_name
),

metric_rows as (
    select
        figures.municipality_code,
        figures.unit_name,
        figures.year,
        metric_values.metric,
        metric_values.value,
        figures.unit_valid,
        figures.months_delivered,
        figures.fte,
        figures.period,
        figures.delivery_id
    from figures
    cross join lateral (
        values
            ('pct_whole_group', figures.pct_whole_group),
            ('pct_per_employee', figures.pct_whole_group / nullif(figures.fte, 0)),
            ('days_per_employee', figures.sick_days / nullif(figures.fte, 0))
    ) as metric_values (metric, value)
),

final as (
    select
        municipality_code,
        unit_name,
        year,
        metric,
        null::text as value_text,
        value,
        -- a year outside the unit's validity dates (config) as in the summary schemes; no contractual
        -- hours or FTE: nothing to relate the sick leave to (never a 0)
        case
            when not coalesce(unit_valid, false) then 'not_applicable'
            when value is null then 'not_applicable'
            else 'reported'
        end as value_status,
        null::numeric as excluded_value,
        round(fte, 4) as fte,
        'hr_payroll_csv' as source_scheme,
        'payroll_extract' as source_system,
        months_delivered,
        period,
        delivery_id
    from metric_rows
)

select * from final
