-- Counted never exceeds registered, nothing is negative, and a not_delivered row has no counts at all.
select municipality_code, year, register, status
from {{ ref('incident_episode_year') }}
where n_excluded > n_registered
    or n_counted < 0
    or (status = 'not_delivered' and coalesce(n_registered, n_excluded, n_counted) is not null)
    or (status = 'reported' and n_registered is null)
