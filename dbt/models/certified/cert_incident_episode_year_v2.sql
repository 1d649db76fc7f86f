{#- Certified incident episodes per municipality × year × register (distinct episodes whatever their
    classes): registered, excluded by a case review or a delivery's note, and counted; 'not_delivered' and
    'quarantined' are never zero ('partly_quarantined' keeps the loaded part's counts).
    An episode count counts events, not persons (docs/disclosure.md): it is published, as the evaluation
    printed it, and small_count flags a count of 1 … threshold−1 so that a reader treats it with care
    ("one resident can change the whole picture"). Nothing here is suppressed. -#}
with episodes as (
    select * from {{ ref('incident_episode_year') }}
),

final as (
    select
        municipality_code::text as municipality_code,
        year::integer as year,
        register::text as register,
        n_registered::integer as n_registered,
        n_excluded::integer as n_excluded,
        n_counted::integer as n_counted,
        ({{ is_small('n_registered') }} or {{ is_small('n_excluded') }} or {{ is_small('n_counted') }})::boolean
            as small_count,
        status::text as status,
        break_id::text as break_id,
        break_description::text as break_description,
        false as suppressed
    from episodes
)

select * from final
