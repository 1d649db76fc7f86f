-- The municipalities' counted threats and violence beside the national benchmark (NFA 2012: share of
-- special-needs educators / social and health care helpers and assistants exposed in a year). The
-- benchmark is a share of people, the municipalities' figures are registered episodes (per 100 FTE where
-- FTE is known): the comparison is context, not a test. Registers that do not split threats from
-- violence (threat_or_violence) are compared with both.
with incidents as (
    select * from {{ ref('incident_year') }}
),

rates as (
    select * from {{ ref('incident_rate_year') }}
),

benchmarks as (
    select * from {{ ref('incident_benchmark') }}
),

municipality_class_year as (
    select
        municipality_code,
        year,
        register,
        incident_class,
        status,
        sum(n_counted)::bigint as n_counted,
        max(break_id) as break_id
    from incidents
    where incident_class in ('threat', 'violence', 'threat_or_violence')
    group by municipality_code, year, register, incident_class, status
),

final as (
    select
        municipality_class_year.municipality_code,
        municipality_class_year.year,
        municipality_class_year.register,
        municipality_class_year.incident_class,
        municipality_class_year.status,
        municipality_class_year.n_counted,
        rates.fte,
        case
            when rates.fte > 0 and municipality_class_year.n_counted is not null
                then round(100.0 * municipality_class_year.n_counted / rates.fte, 2)
        end as episodes_per_100_fte,
        benchmarks.benchmark_id,
        benchmarks.occupation_en as benchmark_occupation,
        benchmarks.incident_class as benchmark_class,
        benchmarks.share_exposed_pct as benchmark_share_exposed_pct,
        benchmarks.reference as benchmark_reference,
        municipality_class_year.break_id
    from municipality_class_year
    inner join benchmarks
        on benchmarks.incident_class = municipality_class_year.incident_class
        or (municipality_class_year.incident_class = 'threat_or_violence'
            and benchmarks.incident_class in ('threat', 'violence'))
    left join rates
        on rates.municipality_code = municipality_class_year.municipality_code
        and rates.year = municipality_class_year.year
        and rates.register = municipality_class_year.register
)

select * from final
