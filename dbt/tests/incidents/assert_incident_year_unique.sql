-- marts.incident_year has one row per municipality × unit (null = municipality level) × year × register × class.
select municipality_code, unit_name, year, register, incident_class, count(*) as n
from {{ ref('incident_year') }}
group by municipality_code, unit_name, year, register, incident_class
having count(*) > 1
