{#- Helper (ephemeral, no table): the incident episode counts per municipality × register × year, together
    with the baseline and follow-up totals that reporting.incident_rate_change publishes, so that one
    suppression pass protects both certified tables: a suppressed year cannot be recovered as the
    baseline total − the other baseline years. -#}
{{ config(materialized='ephemeral') }}
{%- set baseline_years = var('incident_baseline_years') %}
{%- set followup_years = var('incident_followup_years') %}
with episodes as (
    select * from {{ ref('incident_episode_year') }}
),

rate_changes as (
    select * from {{ source('trivsel_statistics', 'incident_rate_change') }}
),

year_rows as (
    select
        municipality_code,
        register,
        year,
        case
            when year in ({{ baseline_years | join(', ') }}) then 'baseline'
            when year in ({{ followup_years | join(', ') }}) then 'followup'
            else year::text
        end as period_group,
        n_registered,
        n_excluded,
        n_counted,
        false as is_total
    from episodes
),

total_rows as (
    select municipality_code, register, null::integer as year, 'baseline' as period_group,
           null::bigint as n_registered, null::bigint as n_excluded, count_baseline::bigint as n_counted,
           true as is_total
    from rate_changes
    union all
    select municipality_code, register, null::integer, 'followup', null::bigint, null::bigint,
           count_followup::bigint, true
    from rate_changes
),

cells as (
    select * from year_rows
    union all
    select * from total_rows
),

suppressed as (
    {{ secondary_suppression(
        'cells',
        partition_by=['municipality_code', 'register', 'period_group'],
        primary=is_small('n_registered') ~ ' or ' ~ is_small('n_excluded') ~ ' or ' ~ is_small('n_counted'),
        size='n_counted',
        is_total='is_total'
    ) }}
)

select
    municipality_code,
    register,
    year,
    period_group,
    is_total,
    suppressed
from suppressed
