-- Counts per municipality × unit × year × register × incident class × scheme, from every scheme:
-- registration-level registers counted from their episodes (an episode with two classes counts once in
-- each class), count-level registers as delivered (a reported 0 stays a row). unit_name is null where the
-- scheme has no units. n_with_absence is null where the register does not record absence.
with registration_classes as (
    select * from {{ ref('int_incident_registration_classes') }}
),

reported_accidents as (
    select * from {{ ref('stg_reported_accidents_by_unit__reported_accident_count') }}
),

yearly_aggregates as (
    select * from {{ ref('stg_incident_yearly_aggregate__incident_year_count') }}
),

use_of_force as (
    select * from {{ ref('stg_use_of_force_yearly__use_of_force_count') }}
),

units as (
    select * from {{ ref('int_units') }}
),

label_map as (
    select * from {{ ref('incident_label_map') }}
),

schemes as (
    select * from {{ ref('incident_scheme') }}
),

from_registrations as (
    select
        municipality_code,
        unit_name,
        year,
        register,
        incident_class,
        scheme,
        count(distinct episode_id) as n_registered,
        count(distinct episode_id) filter (where is_excluded) as n_excluded,
        case
            when bool_or(with_absence is not null)
                then count(distinct episode_id) filter (where with_absence)
        end as n_with_absence,
        string_agg(distinct exclusion_reason, '; ') as exclusion_reasons
    from registration_classes
    group by municipality_code, unit_name, year, register, incident_class, scheme
),

from_reported_accidents as (
    select
        reported_accidents.municipality_code,
        units.unit_name,
        reported_accidents.year,
        reported_accidents.scheme,
        label_map.incident_class,
        reported_accidents.n_reported as n_registered,
        0 as n_excluded,
        null::text as exclusion_reason
    from reported_accidents
    left join units
        on units.municipality_code = reported_accidents.municipality_code
        and units.name_as_registered = reported_accidents.unit_label
    left join label_map
        on label_map.scheme = reported_accidents.scheme
        and label_map.label_column = 'injury_effect'
        and label_map.label = reported_accidents.injury_effect
),

from_yearly_aggregates as (
    select
        yearly_aggregates.municipality_code,
        null::text as unit_name,
        yearly_aggregates.year,
        yearly_aggregates.scheme,
        label_map.incident_class,
        yearly_aggregates.n_incidents as n_registered,
        0 as n_excluded,
        null::text as exclusion_reason
    from yearly_aggregates
    left join label_map
        on label_map.scheme = yearly_aggregates.scheme
        and label_map.label_column = 'incident_type'
        and label_map.label = yearly_aggregates.incident_type
),

from_use_of_force as (
    select
        use_of_force.municipality_code,
        null::text as unit_name,
        use_of_force.year,
        use_of_force.scheme,
        label_map.incident_class,
        use_of_force.n_use_of_force as n_registered,
        coalesce(use_of_force.n_non_participant, 0) as n_excluded,
        case when use_of_force.n_non_participant > 0 then use_of_force.note end as exclusion_reason
    from use_of_force
    left join label_map
        on label_map.scheme = use_of_force.scheme
        and label_map.label_column = 'n_use_of_force'
),

count_rows as (
    select * from from_reported_accidents
    union all
    select * from from_yearly_aggregates
    union all
    select * from from_use_of_force
),

from_counts as (
    select
        count_rows.municipality_code,
        count_rows.unit_name,
        count_rows.year,
        schemes.register,
        count_rows.incident_class,
        count_rows.scheme,
        sum(count_rows.n_registered)::bigint as n_registered,
        sum(count_rows.n_excluded)::bigint as n_excluded,
        null::bigint as n_with_absence,
        string_agg(distinct count_rows.exclusion_reason, '; ') as exclusion_reasons
    from count_rows
    inner join schemes
        on schemes.scheme = count_rows.scheme
    group by count_rows.municipality_code, count_rows.unit_name, count_rows.year, schemes.register,
        count_rows.incident_class, count_rows.scheme
),

final as (
    select * from from_registrations
    union all
    select * from from_counts
)

select * from final
