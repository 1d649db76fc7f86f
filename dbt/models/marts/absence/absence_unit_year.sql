-- Sick leave per unit, year and metric as delivered (Tables 7.6-7.9), plus one '(average)' row per
-- municipality × year × metric: the unweighted mean over the units whose value is 'reported' (the report's
-- rule), and value_incl_excluded with the excluded figures added (Fredericia 2012: 6.91 and 9.48).
-- comparable_with_previous is false in a year a recorded comparability break starts (for the whole
-- municipality, or for the unit), null where there is no earlier year.
with figures as (
    select * from {{ ref('int_absence__unit_year_figures') }}
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
        source_system
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
        string_agg(distinct source_system, ', ') as source_system
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
        exists (
            select 1
            from all_rows as earlier
            where earlier.municipality_code = all_rows.municipality_code
                and earlier.unit_name = all_rows.unit_name
                and earlier.metric = all_rows.metric
                and earlier.year < all_rows.year
        ) as has_earlier_year
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
        case
            when break_id is not null then false
            when has_earlier_year then true
        end as comparable_with_previous,
        break_id
    from with_breaks
)

select * from final
