-- Every name a unit goes by (its canonical name and the aliases registers use), with validity dates.
with units as (
    select * from {{ ref('stg_config__unit') }}
),

aliases as (
    select * from {{ ref('unit_aliases') }}
),

canonical_names as (
    select
        municipality_code,
        unit_name as name_as_registered,
        unit_name,
        valid_from,
        valid_to,
        false as is_alias
    from units
),

alias_names as (
    select
        units.municipality_code,
        aliases.alias as name_as_registered,
        units.unit_name,
        units.valid_from,
        units.valid_to,
        true as is_alias
    from aliases
    inner join units
        on units.municipality_code = aliases.municipality_code::text
        and units.unit_name = aliases.unit_name
),

final as (
    select * from canonical_names
    union all
    select * from alias_names
)

select * from final
