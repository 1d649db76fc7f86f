-- Counted incident episodes per 100 FTE, per municipality × year × register, where the FTE is known from
-- the absence source (marts.absence_unit_year: the units' FTE, summed). Where it is not (no absence
-- delivery for the municipality and year), fte and the rate are null: never a guess.
with episodes as (
    select * from {{ ref('incident_episode_year') }}
),

absence as (
    select * from {{ ref('absence_unit_year') }}
),

unit_fte as (
    select
        municipality_code,
        unit_name,
        year,
        max(fte) as fte
    from absence
    where not is_average
        and fte is not null
    group by municipality_code, unit_name, year
),

municipality_fte as (
    select
        municipality_code::text as municipality_code,
        year::integer as year,
        sum(fte)::numeric as fte,
        count(*) as n_units_with_fte
    from unit_fte
    group by municipality_code, year
),

final as (
    select
        episodes.municipality_code,
        episodes.year,
        episodes.register,
        episodes.status,
        episodes.n_counted,
        municipality_fte.fte,
        municipality_fte.n_units_with_fte,
        case
            when municipality_fte.fte > 0 and episodes.n_counted is not null
                then round(100.0 * episodes.n_counted / municipality_fte.fte, 2)
        end as rate_per_100_fte,
        episodes.break_id
    from episodes
    left join municipality_fte
        on municipality_fte.municipality_code = episodes.municipality_code
        and municipality_fte.year = episodes.year
)

select * from final
