-- Every label a loaded delivery carries has a row in dbt/seeds/incidents/incident_label_map.csv
-- (parsers quarantine unknown labels; this catches a parser and the seed drifting apart).
with staged_labels as (
    select distinct scheme, 'event_type' as label_column, event_type as label
    from {{ ref('stg_ohs_registry_export__ohs_registration') }}
    union
    select distinct scheme, 'injury_type', injury_type
    from {{ ref('stg_ohs_registry_export__ohs_registration') }}
    union
    select distinct scheme, 'also_violence', also_violence_label
    from {{ ref('stg_ohs_case_review__ohs_case_review') }}
    union
    select distinct scheme, 'injury_effect', injury_effect
    from {{ ref('stg_reported_accidents_by_unit__reported_accident_count') }}
    union
    select distinct scheme, 'incident_type', incident_type
    from {{ ref('stg_internal_incident_register__internal_incident') }}
    union
    select distinct scheme, 'subtype', subtype
    from {{ ref('stg_internal_incident_register__internal_incident') }}
    union
    select distinct scheme, 'incident_type', incident_type
    from {{ ref('stg_incident_yearly_aggregate__incident_year_count') }}
),

label_map as (
    select * from {{ ref('incident_label_map') }}
)

select staged_labels.*
from staged_labels
left join label_map
    on label_map.scheme = staged_labels.scheme
    and label_map.label_column = staged_labels.label_column
    and label_map.label = staged_labels.label
where label_map.label is null
