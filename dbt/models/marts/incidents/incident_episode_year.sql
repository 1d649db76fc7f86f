-- Distinct incident episodes per municipality × year × register, whatever their classes (a threat that
-- was also violence is one episode): registered, excluded by a case review or a delivery's note (flagged,
-- not deleted) and counted. A register not delivered in a year is 'not_delivered' with null counts, one
-- whose file was quarantined 'quarantined' (or 'waiting') with null counts; a register delivered with no
-- episodes is 'reported' with 0; 'partly_quarantined' keeps the (incomplete) counts of what was loaded
-- (statuses from int_incident_spine). Rows a comparability break affects name it.
with episode_counts as (
    select * from {{ ref('int_incident_episode_counts') }}
),

spine as (
    select distinct
        municipality_code,
        register,
        year,
        status
    from {{ ref('int_incident_spine') }}
),

breaks as (
    select * from {{ ref('int_incident_breaks') }}
),

joined as (
    select
        spine.municipality_code,
        spine.year,
        spine.register,
        case
            when spine.status in ('reported', 'partly_quarantined') then coalesce(episode_counts.n_registered, 0)
        end as n_registered,
        case
            when spine.status in ('reported', 'partly_quarantined') then coalesce(episode_counts.n_excluded, 0)
        end as n_excluded,
        spine.status
    from spine
    left join episode_counts
        on episode_counts.municipality_code = spine.municipality_code
        and episode_counts.year = spine.year
        and episode_counts.register = spine.register
),

final as (
    select
        joined.municipality_code,
        joined.year,
        joined.register,
        joined.n_registered,
        joined.n_excluded,
        joined.n_registered - joined.n_excluded as n_counted,
        joined.status,
        (
            select string_agg(breaks.break_id, ', ' order by breaks.break_id)
            from breaks
            where breaks.municipality_code = joined.municipality_code
                and breaks.register = joined.register
        ) as break_id,
        (
            select string_agg(breaks.description_en, '; ' order by breaks.break_id)
            from breaks
            where breaks.municipality_code = joined.municipality_code
                and breaks.register = joined.register
        ) as break_description
    from joined
)

select * from final
