-- marts.incident_episode_year has one row per municipality × year × register.
select municipality_code, year, register, count(*) as n
from {{ ref('incident_episode_year') }}
group by municipality_code, year, register
having count(*) > 1
