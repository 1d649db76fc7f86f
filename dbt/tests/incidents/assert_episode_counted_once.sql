-- An episode with two classes is one episode: per municipality × year × register, distinct episodes never
-- exceed the sum over classes, and the registration-level episodes equal the distinct episode ids.
with per_class as (
    select municipality_code, year, register, sum(n_registered) as n_class_rows
    from {{ ref('incident_year') }}
    inner join {{ ref('incident_class') }} using (incident_class)
    where counts_as_episode and status = 'reported'
    group by municipality_code, year, register
)

select episodes.municipality_code, episodes.year, episodes.register
from {{ ref('incident_episode_year') }} as episodes
inner join per_class
    using (municipality_code, year, register)
where episodes.n_registered > per_class.n_class_rows
