{#- Certified sick leave per unit × year × metric, v1 (superseded by v2, kept for its readers): a projection of
    v2 without months_delivered and is_part_year, so the disclosure rule lives once (docs/disclosure.md). -#}
with unit_years as (
    select * from {{ ref('cert_absence_unit_year', v=2) }}
),

final as (
    select
        municipality_code,
        unit_name,
        is_average,
        year,
        metric,
        value,
        value_status,
        excluded_value,
        value_incl_excluded,
        comparable_with_previous,
        break_id,
        suppressed
    from unit_years
)

select * from final
