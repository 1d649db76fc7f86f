-- Distinct episodes per municipality × year × register, whatever their classes: a registration that is
-- both threat and violence is one episode. Only classes that count as incident episodes (threats,
-- violence, near-misses, use of force; not other injuries) are counted. Count-level registers deliver one
-- count per class; their classes are taken to be disjoint (one episode, one class) and summed.
with registration_classes as (
    select * from {{ ref('int_incident_registration_classes') }}
),

counts as (
    select * from {{ ref('int_incident_counts') }}
),

classes as (
    select * from {{ ref('incident_class') }}
),

schemes as (
    select * from {{ ref('incident_scheme') }}
),

from_registrations as (
    select
        registration_classes.municipality_code,
        registration_classes.year,
        registration_classes.register,
        count(distinct registration_classes.episode_id) as n_registered,
        count(distinct registration_classes.episode_id) filter (where registration_classes.is_excluded)
            as n_excluded
    from registration_classes
    inner join classes
        on classes.incident_class = registration_classes.incident_class
    where classes.counts_as_episode
    group by registration_classes.municipality_code, registration_classes.year, registration_classes.register
),

from_counts as (
    select
        counts.municipality_code,
        counts.year,
        counts.register,
        sum(counts.n_registered)::bigint as n_registered,
        sum(counts.n_excluded)::bigint as n_excluded
    from counts
    inner join schemes
        on schemes.scheme = counts.scheme
    inner join classes
        on classes.incident_class = counts.incident_class
    where schemes.granularity = 'count'
        and classes.counts_as_episode
    group by counts.municipality_code, counts.year, counts.register
),

all_counts as (
    select * from from_registrations
    union all
    select * from from_counts
),

final as (
    select
        municipality_code,
        year,
        register,
        sum(n_registered)::bigint as n_registered,
        sum(n_excluded)::bigint as n_excluded
    from all_counts
    group by municipality_code, year, register
)

select * from final
