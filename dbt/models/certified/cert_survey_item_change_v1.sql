{#- Certified survey item changes v1 (superseded by v2, kept for its readers): a projection of v2, so the
    disclosure rule lives once (docs/disclosure.md). v1 knows waves only: a pooled 'ALL' row over different
    months (no wave) is in v2 alone; dropping a row publishes less, never more. -#}
with changes as (
    select * from {{ ref('cert_survey_item_change', v=2) }}
    where baseline_wave is not null and followup_wave is not null
),

final as (
    select
        municipality_code,
        item_code,
        dimension_da,
        dimension_en,
        text_da,
        text_en,
        baseline_wave,
        followup_wave,
        n_baseline,
        n_followup,
        mean_baseline,
        mean_followup,
        mean_diff,
        p_value,
        significant,
        q_value,
        mannwhitney_p,
        effect_size,
        effect_ci_low,
        effect_ci_high,
        pct_favourable_baseline,
        pct_favourable_followup,
        low_response,
        suppressed
    from changes
)

select * from final
