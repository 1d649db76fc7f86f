{#- Certified survey item changes, v2: reporting.survey_item_change (Welch's t-test per scope × item × pair of
    survey rounds, written by trivsel.stats.survey) with small-cell suppression. v2 adds the rounds
    (baseline_round, followup_round); the waves are null on an 'ALL' row whose municipalities surveyed the
    round in different months. A scope × item × pair is suppressed when either round has 1 … threshold−1
    answers; secondary suppression across the
    municipalities of 'ALL' keeps a suppressed municipality from being recovered as ALL − the others. -#}
with changes as (
    select * from {{ source('trivsel_statistics', 'survey_item_change') }}
),

items as (
    select * from {{ ref('dim_survey_item') }}
),

cells as (
    select
        changes.municipality_code,
        changes.item_code,
        items.dimension_da,
        items.dimension_en,
        items.text_da,
        items.text_en,
        changes.baseline_round,
        changes.followup_round,
        changes.baseline_wave,
        changes.followup_wave,
        changes.n_baseline,
        changes.n_followup,
        changes.mean_baseline,
        changes.mean_followup,
        changes.mean_diff,
        changes.p_value,
        changes.significant,
        changes.q_value,
        changes.mannwhitney_p,
        changes.effect_size,
        changes.effect_ci_low,
        changes.effect_ci_high,
        changes.pct_favourable_baseline,
        changes.pct_favourable_followup,
        changes.low_response
    from changes
    left join items
        on items.item_code = changes.item_code
),

suppressed as (
    {{ secondary_suppression(
        'cells',
        partition_by=['item_code', 'baseline_round', 'followup_round'],
        primary=is_small('n_baseline') ~ ' or ' ~ is_small('n_followup'),
        size='least(n_baseline, n_followup)',
        is_total="municipality_code = 'ALL'"
    ) }}
),

final as (
    select
        municipality_code::text as municipality_code,
        item_code::text as item_code,
        dimension_da::text as dimension_da,
        dimension_en::text as dimension_en,
        text_da::text as text_da,
        text_en::text as text_en,
        baseline_round::text as baseline_round,
        followup_round::text as followup_round,
        baseline_wave::text as baseline_wave,
        followup_wave::text as followup_wave,
        case when not suppressed then n_baseline end::integer as n_baseline,
        case when not suppressed then n_followup end::integer as n_followup,
        case when not suppressed then mean_baseline end::double precision as mean_baseline,
        case when not suppressed then mean_followup end::double precision as mean_followup,
        case when not suppressed then mean_diff end::double precision as mean_diff,
        case when not suppressed then p_value end::double precision as p_value,
        case when not suppressed then significant end::boolean as significant,
        case when not suppressed then q_value end::double precision as q_value,
        case when not suppressed then mannwhitney_p end::double precision as mannwhitney_p,
        case when not suppressed then effect_size end::double precision as effect_size,
        case when not suppressed then effect_ci_low end::double precision as effect_ci_low,
        case when not suppressed then effect_ci_high end::double precision as effect_ci_high,
        -- a share is a count in disguise: null when it stands for 1 … threshold−1 answers
        case
            when not suppressed and not {{ is_small('round(pct_favourable_baseline * n_baseline)') }}
                and not {{ is_small('n_baseline - round(pct_favourable_baseline * n_baseline)') }}
                then pct_favourable_baseline
        end::double precision as pct_favourable_baseline,
        case
            when not suppressed and not {{ is_small('round(pct_favourable_followup * n_followup)') }}
                and not {{ is_small('n_followup - round(pct_favourable_followup * n_followup)') }}
                then pct_favourable_followup
        end::double precision as pct_favourable_followup,
        low_response::boolean as low_response,
        suppressed::boolean as suppressed
    from suppressed
)

select * from final
