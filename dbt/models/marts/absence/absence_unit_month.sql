-- Sick leave per unit and month from the monthly deliveries: employee-level payroll extracts (hours, FTE,
-- sick-leave %, sick days per FTE) and the month sheets of HR statistics workbooks (sick-leave % only).
-- The payroll figures add up the per-delivery sums of int_absence__delivery_unit_month (incremental), not
-- the employee-months themselves: a rebuild reads units × months, not employees × months.
-- A workbook figure in parentheses, e.g. (21,95), is the scheme's "excluded from averages": it keeps its
-- value here, as in absence_unit_year, with value_status 'excluded' (shown, never averaged); the excluded
-- second figure of a two-figure cell (7,00/(10,24)) is kept as excluded_value. Only markers ('Ej oplyst',
-- '-') have no value.
with delivery_unit_months as (
    select * from {{ ref('int_absence__delivery_unit_month') }}
),

workbook as (
    select * from {{ ref('stg_hr_unit_workbook__hr_unit_workbook_value') }}
    where not is_year_figure
),

markers as (
    select * from {{ ref('absence_value_markers') }}
),

units as (
    select * from {{ ref('int_units') }}
),

payroll_unit_months as (
    select
        municipality_code,
        unit_name,
        month_start,
        'hr_payroll_csv' as source_scheme,
        'payroll_extract' as source_system,
        sum(n_employees)::bigint as n_employees,
        sum(sick_hours) as sick_hours,
        sum(contractual_hours) as contractual_hours,
        sum(fte) as fte,
        100 * sum(sick_hours) / nullif(sum(contractual_hours), 0) as sick_leave_pct,
        sum(sick_days) / nullif(sum(fte), 0) as sick_days_per_fte,
        'reported' as value_status,
        null::text as value_text,
        null::numeric as excluded_value,
        max(delivery_id) as delivery_id
    from delivery_unit_months
    group by municipality_code, unit_name, month_start
),

workbook_ranked as (
    select
        workbook.*,
        units.unit_name,
        row_number() over (
            partition by workbook.municipality_code, units.unit_name, workbook.year, workbook.month
            order by workbook.period desc, workbook.delivery_id desc
        ) as recency
    from workbook
    left join units
        on units.municipality_code = workbook.municipality_code
        and lower(units.name_as_registered) = lower(trim(workbook.unit_text))
),

workbook_unit_months as (
    select
        workbook_ranked.municipality_code,
        workbook_ranked.unit_name,
        make_date(workbook_ranked.year, workbook_ranked.month, 1) as month_start,
        'hr_unit_workbook' as source_scheme,
        workbook_ranked.source_system,
        null::bigint as n_employees,
        null::numeric as sick_hours,
        null::numeric as contractual_hours,
        null::numeric as fte,
        case when markers.value_status is null then workbook_ranked.value_numeric end as sick_leave_pct,
        null::numeric as sick_days_per_fte,
        case
            when markers.value_status is not null then markers.value_status
            when workbook_ranked.value_in_parentheses then 'excluded'
            else 'reported'
        end as value_status,
        workbook_ranked.value_text,
        case
            when workbook_ranked.second_value_in_parentheses then workbook_ranked.second_value_numeric
        end as excluded_value,
        workbook_ranked.delivery_id
    from workbook_ranked
    left join markers
        on lower(markers.marker) = lower(workbook_ranked.marker)
    where workbook_ranked.recency = 1
),

unioned as (
    select * from payroll_unit_months
    union all
    select * from workbook_unit_months
),

final as (
    select
        municipality_code,
        unit_name,
        month_start,
        to_char(month_start, 'YYYY-MM') as month,
        extract(year from month_start)::int as year,
        source_scheme,
        source_system,
        n_employees,
        sick_hours,
        contractual_hours,
        fte,
        round(sick_leave_pct, 4) as sick_leave_pct,
        round(sick_days_per_fte, 4) as sick_days_per_fte,
        value_status,
        value_text,
        round(excluded_value, 4) as excluded_value,
        delivery_id
    from unioned
)

select * from final
