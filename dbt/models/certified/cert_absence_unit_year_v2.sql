{#- Version 2 adds months_delivered and is_part_year (payroll municipalities: the figures of a year with
    fewer than 12 months of payroll are a part year). Version 1 stays beside it (absence_unit_year_v1).
    Certified sick leave per unit × year × metric and the municipality's '(average)' row (the report's
    Tables 7.6–7.9). Primary suppression counts persons (docs/disclosure.md): a unit's figure is suppressed
    when fewer than the threshold of employees can be behind it. The employees behind a figure are at least
    its FTE rounded up (nobody works more than one FTE), so a figure with ceil(fte) < threshold is
    suppressed: a sick-leave percentage of a handful of people is their health. 4.97 FTE are at least 5
    employees and are published, as the evaluation printed them.
    Secondary suppression within municipality × year × metric: the average is the unweighted mean over
    the reported units, so one suppressed unit would be recoverable from the average and the others. -#}
with unit_years as (
    select * from {{ ref('absence_unit_year') }}
),

suppressed as (
    {{ secondary_suppression(
        'unit_years',
        partition_by=['municipality_code', 'year', 'metric'],
        primary='not is_average and fte > 0 and ceil(fte) < ' ~ small_cell_threshold(),
        size='coalesce(fte, 1000000)',
        is_total='is_average'
    ) }}
),

final as (
    select
        municipality_code::text as municipality_code,
        unit_name::text as unit_name,
        is_average::boolean as is_average,
        year::integer as year,
        metric::text as metric,
        case when not suppressed then value end::numeric(12, 4) as value,
        value_status::text as value_status,
        case when not suppressed then excluded_value end::numeric(12, 4) as excluded_value,
        case when not suppressed then value_incl_excluded end::numeric(12, 4) as value_incl_excluded,
        months_delivered::integer as months_delivered,
        is_part_year::boolean as is_part_year,
        comparable_with_previous::boolean as comparable_with_previous,
        break_id::text as break_id,
        suppressed::boolean as suppressed
    from suppressed
)

select * from final
