-- Every unit a per-unit incident register names maps to a unit in config (directly or via unit_aliases).
select counts.municipality_code, counts.scheme, counts.year
from {{ ref('int_incident_counts') }} as counts
inner join {{ ref('incident_scheme') }} as schemes
    on schemes.scheme = counts.scheme
where schemes.has_units
    and counts.unit_name is null
