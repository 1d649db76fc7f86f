{#- Certified survey item changes, v2: reporting.survey_item_change (Welch's t-test per scope × item × pair of
    survey rounds, written by trivsel.stats.survey) with small-cell suppression. v2 adds the rounds
    (baseline_round, followup_round); the waves are null on an 'ALL' row whose municipalities surveyed the
    round in different months. A scope × item × pair is suppressed when either round has 1 … threshold−1
    answers; secondary suppression across the
    municipalities of 'ALL' keeps a suppressed municipality from being recovered as ALL − the others.
    Beside n, each wave publishes what its disclosure tier allows (trivsel.disclosure, computed by the
    statistics from the true distribution; docs/disclosure.md): a wave whose answer distribution is withheld
    gives its mean and spread only when the integer solutions of n, mean, spread (and pct_favourable) leave
    every small category open; pct_favourable only at tier all/whole; the pair's statistics (difference,
    p, q, g and its CI, and the minimum detectable difference mdd, which is the spread in points) only when both
    waves give their mean; Mann-Whitney's p only when both distributions are published whole. underpowered
    depends on the n's, significance_level and power only: published wherever the n's are. -#}
with changes as (
    select * from {{ source('trivsel_statistics', 'survey_item_change') }}
),

items as (
    select * from {{ ref('dim_survey_item') }}
),

-- the item totals of the answer distribution are the same n: withheld there, withheld here
distribution_totals as (
    select municipality_code, round, item_code, bool_or(suppressed) as suppressed
    from {{ ref('cert_survey_answer_distribution', v=2) }}
    where is_total and round is not null
    group by municipality_code, round, item_code
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
        changes.low_response,
        changes.mdd,
        changes.underpowered,
        changes.significance_level,
        changes.disclosure_baseline in ('no_share', 'all', 'whole') as mean_baseline_safe,
        changes.disclosure_followup in ('no_share', 'all', 'whole') as mean_followup_safe,
        changes.disclosure_baseline in ('all', 'whole') as share_baseline_safe,
        changes.disclosure_followup in ('all', 'whole') as share_followup_safe,
        changes.disclosure_baseline = 'whole' and changes.disclosure_followup = 'whole' as distributions_whole,
        coalesce(base_totals.suppressed, false) or coalesce(follow_totals.suppressed, false) as total_suppressed
    from changes
    left join items
        on items.item_code = changes.item_code
    left join distribution_totals as base_totals
        on base_totals.municipality_code = changes.municipality_code
        and base_totals.round = changes.baseline_round
        and base_totals.item_code = changes.item_code
    left join distribution_totals as follow_totals
        on follow_totals.municipality_code = changes.municipality_code
        and follow_totals.round = changes.followup_round
        and follow_totals.item_code = changes.item_code
),

suppressed as (
    {{ secondary_suppression(
        'cells',
        partition_by=['item_code', 'baseline_round', 'followup_round'],
        primary='total_suppressed or ' ~ is_small('n_baseline') ~ ' or ' ~ is_small('n_followup'),
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
        case when not suppressed and mean_baseline_safe then mean_baseline end::double precision as mean_baseline,
        case when not suppressed and mean_followup_safe then mean_followup end::double precision as mean_followup,
        {%- for column, type in [('mean_diff', 'double precision'), ('p_value', 'double precision'),
                                 ('significant', 'boolean'), ('q_value', 'double precision')] %}
        case when not suppressed and mean_baseline_safe and mean_followup_safe then {{ column }} end::{{ type }}
            as {{ column }},
        {%- endfor %}
        case when not suppressed and distributions_whole then mannwhitney_p end::double precision as mannwhitney_p,
        {%- for column in ['effect_size', 'effect_ci_low', 'effect_ci_high', 'mdd'] %}
        case when not suppressed and mean_baseline_safe and mean_followup_safe then {{ column }} end::double precision
            as {{ column }},
        {%- endfor %}
        -- a share is a count in disguise: published only where the disclosure tier allows it
        case when not suppressed and share_baseline_safe then pct_favourable_baseline end::double precision
            as pct_favourable_baseline,
        case when not suppressed and share_followup_safe then pct_favourable_followup end::double precision
            as pct_favourable_followup,
        low_response::boolean as low_response,
        case when not suppressed then underpowered end::boolean as underpowered,
        significance_level::double precision as significance_level,
        suppressed::boolean as suppressed
    from suppressed
)

select * from final
