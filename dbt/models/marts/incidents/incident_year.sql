-- Incidents per municipality × unit × year × register × incident class: registered, excluded by a case
-- review (flagged, never deleted) and counted, and (where the register records it) how many with absence. unit_name is null where the source has no units, and for
-- a class the register reported none of in the year (0). A register not delivered in a year shows
-- 'not_delivered' with null counts, never 0; one whose file for the year was quarantined shows
-- 'quarantined' (or 'waiting' while held), also with null counts: delivered but rejected is not "not
-- delivered". A year with one file loaded and another quarantined keeps its counts, flagged
-- 'partly_quarantined' (int_incident_spine). Every row affected by a recorded comparability break names it.
with counts as (
    select * from {{ ref('int_incident_counts') }}
),

spine as (
    select * from {{ ref('int_incident_spine') }}
),

breaks as (
    select * from {{ ref('int_incident_breaks') }}
),

register_years as (
    select distinct
        municipality_code,
        register,
        year,
        status
    from spine
),

cells as (
    select
        municipality_code,
        unit_name,
        year,
        register,
        incident_class,
        sum(n_registered)::bigint as n_registered,
        sum(n_excluded)::bigint as n_excluded,
        sum(n_with_absence)::bigint as n_with_absence,
        string_agg(distinct exclusion_reasons, '; ') as exclusion_reasons
    from counts
    group by municipality_code, unit_name, year, register, incident_class
),

reported_cells as (
    select
        cells.municipality_code,
        cells.unit_name,
        cells.year,
        cells.register,
        cells.incident_class,
        cells.n_registered,
        cells.n_excluded,
        cells.n_with_absence,
        cells.exclusion_reasons,
        coalesce(register_years.status, 'reported') as status
    from cells
    left join register_years
        on register_years.municipality_code = cells.municipality_code
        and register_years.register = cells.register
        and register_years.year = cells.year
),

-- A class the register can hold but reported none of in a delivered year: one municipality-level 0.
zero_cells as (
    select
        spine.municipality_code,
        null::text as unit_name,
        spine.year,
        spine.register,
        spine.incident_class,
        0::bigint as n_registered,
        0::bigint as n_excluded,
        null::bigint as n_with_absence,
        null::text as exclusion_reasons,
        spine.status
    from spine
    where spine.status in ('reported', 'partly_quarantined')
        and not exists (
            select 1
            from cells
            where cells.municipality_code = spine.municipality_code
                and cells.year = spine.year
                and cells.register = spine.register
                and cells.incident_class = spine.incident_class
        )
),

-- Nothing usable for the year: not delivered, quarantined or waiting, each said as such, counts null.
not_delivered_cells as (
    select
        spine.municipality_code,
        null::text as unit_name,
        spine.year,
        spine.register,
        spine.incident_class,
        null::bigint as n_registered,
        null::bigint as n_excluded,
        null::bigint as n_with_absence,
        null::text as exclusion_reasons,
        spine.status
    from spine
    where spine.status in ('not_delivered', 'quarantined', 'waiting')
),

all_rows as (
    select * from reported_cells
    union all
    select * from zero_cells
    union all
    select * from not_delivered_cells
),

final as (
    select
        all_rows.municipality_code,
        all_rows.unit_name,
        all_rows.year,
        all_rows.register,
        all_rows.incident_class,
        all_rows.n_registered,
        all_rows.n_excluded,
        all_rows.n_registered - all_rows.n_excluded as n_counted,
        all_rows.status,
        all_rows.n_with_absence,
        all_rows.exclusion_reasons,
        (
            select string_agg(breaks.break_id, ', ' order by breaks.break_id)
            from breaks
            where breaks.municipality_code = all_rows.municipality_code
                and breaks.register = all_rows.register
                and (breaks.unit_name is null or all_rows.unit_name is null or breaks.unit_name = all_rows.unit_name)
        ) as break_id,
        (
            select string_agg(breaks.description_en, '; ' order by breaks.break_id)
            from breaks
            where breaks.municipality_code = all_rows.municipality_code
                and breaks.register = all_rows.register
                and (breaks.unit_name is null or all_rows.unit_name is null or breaks.unit_name = all_rows.unit_name)
        ) as break_description
    from all_rows
)

select * from final
