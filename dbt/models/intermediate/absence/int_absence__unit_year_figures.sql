-- One row per unit × year × metric from the yearly figures of the workbook (year sheet) and the unit-year
-- summary, with the delivered text interpreted: value_status from the markers seed, a figure in
-- parentheses 'excluded', a second figure of a two-figure cell (7,00/(10,24)) kept as excluded_value.
-- A figure for a year outside the unit's validity dates (int_units, from config) is 'not_applicable'.
-- When several loaded deliveries give the same unit-year-metric, the latest period wins.
with workbook as (
    select * from {{ ref('stg_hr_unit_workbook__hr_unit_workbook_value') }}
    where is_year_figure
),

summary as (
    select * from {{ ref('stg_hr_unit_year_summary__hr_unit_year_summary') }}
),

metrics as (
    select * from {{ ref('absence_metrics') }}
),

markers as (
    select * from {{ ref('absence_value_markers') }}
),

units as (
    select * from {{ ref('int_units') }}
),

delivered as (
    select
        municipality_code, period, delivery_id, source_row, unit_text, year,
        'pct_whole_group' as metric,
        'hr_unit_workbook' as source_scheme,
        source_system,
        value_text, marker, value_numeric, value_in_parentheses,
        second_value_numeric, second_value_in_parentheses,
        null::numeric as fte
    from workbook

    union all

    select
        summary.municipality_code, summary.period, summary.delivery_id, summary.source_row, summary.unit_text,
        summary.year,
        metrics.metric,
        'hr_unit_year_summary' as source_scheme,
        'unit_year_summary' as source_system,
        summary.value_text, summary.marker, summary.value_numeric, summary.value_in_parentheses,
        summary.second_value_numeric, summary.second_value_in_parentheses,
        summary.fte
    from summary
    left join metrics
        on lower(metrics.summary_label_da) = lower(summary.metric_label)
),

interpreted as (
    select
        delivered.municipality_code,
        units.unit_name,
        delivered.year,
        delivered.metric,
        delivered.value_text,
        delivered.value_numeric as value,
        case
            when markers.value_status is not null then markers.value_status
            -- a figure for a year the unit did not belong to the municipality (dim validity dates)
            when not (units.valid_from <= make_date(delivered.year, 12, 31)
                      and coalesce(units.valid_to, 'infinity'::date) >= make_date(delivered.year, 1, 1))
                then 'not_applicable'
            when delivered.value_in_parentheses then 'excluded'
            when delivered.value_numeric is not null then 'reported'
        end as value_status,
        -- the excluded figure of a two-figure cell such as 7,00/(10,24)
        case when delivered.second_value_in_parentheses then delivered.second_value_numeric end
            as excluded_value,
        delivered.fte,
        delivered.source_scheme,
        delivered.source_system,
        delivered.period,
        delivered.delivery_id,
        delivered.source_row,
        row_number() over (
            partition by delivered.municipality_code, units.unit_name, delivered.year, delivered.metric
            order by delivered.period desc, delivered.delivery_id desc
        ) as recency
    from delivered
    left join units
        on units.municipality_code = delivered.municipality_code
        and lower(units.name_as_registered) = lower(trim(delivered.unit_text))
    left join markers
        on lower(markers.marker) = lower(delivered.marker)
),

final as (
    select
        municipality_code,
        unit_name,
        year,
        metric,
        value_text,
        value,
        value_status,
        excluded_value,
        fte,
        source_scheme,
        source_system,
        period,
        delivery_id,
        source_row
    from interpreted
    where recency = 1
)

select * from final
