{#- Certified incident episodes per municipality × year × register (distinct episodes whatever their
    classes): registered, excluded by a case review or a delivery's note, and counted; 'not_delivered' and
    'quarantined' are never zero ('partly_quarantined' keeps the loaded part's counts). A row with a count
    of 1 … threshold−1 is suppressed as a whole (its counts are a sum:
    counted = registered − excluded), with secondary suppression against the baseline/follow-up totals of
    certified incident_rate_change (see cert_incident_cells). -#}
with episodes as (
    select * from {{ ref('incident_episode_year') }}
),

cells as (
    select * from {{ ref('cert_incident_cells') }}
    where not is_total
),

final as (
    select
        episodes.municipality_code::text as municipality_code,
        episodes.year::integer as year,
        episodes.register::text as register,
        case when not cells.suppressed then episodes.n_registered end::integer as n_registered,
        case when not cells.suppressed then episodes.n_excluded end::integer as n_excluded,
        case when not cells.suppressed then episodes.n_counted end::integer as n_counted,
        episodes.status::text as status,
        episodes.break_id::text as break_id,
        episodes.break_description::text as break_description,
        cells.suppressed::boolean as suppressed
    from episodes
    inner join cells
        on cells.municipality_code = episodes.municipality_code
        and cells.register = episodes.register
        and cells.year = episodes.year
)

select * from final
