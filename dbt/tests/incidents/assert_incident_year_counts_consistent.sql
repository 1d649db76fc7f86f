-- Counted never exceeds registered, nothing is negative, and a not_delivered row has no counts at all.
-- (One model per singular test: Cosmos runs a test with the build of each of its parents.)
select municipality_code, unit_name, year, register, incident_class, status
from {{ ref('incident_year') }}
where n_excluded > n_registered
    or n_counted < 0
    or n_with_absence > n_registered
    or (status = 'not_delivered' and coalesce(n_registered, n_excluded, n_counted) is not null)
    or (status = 'reported' and n_registered is null)
