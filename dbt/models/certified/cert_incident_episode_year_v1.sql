{#- Certified incident episodes v1 (superseded by v2, kept for its readers): a projection of v2 without its
    small_count flag, so the rule lives once (docs/disclosure.md). -#}
with episodes as (
    select * from {{ ref('cert_incident_episode_year', v=2) }}
),

final as (
    select
        municipality_code,
        year,
        register,
        n_registered,
        n_excluded,
        n_counted,
        status,
        break_id,
        break_description,
        suppressed
    from episodes
)

select * from final
