-- One mapping per scheme, column and label.
select scheme, label_column, label, count(*) as n
from {{ ref('incident_label_map') }}
group by scheme, label_column, label
having count(*) > 1
