-- Every case HT's case review marks is a registration in a loaded registry export of the municipality.
-- per_municipality (trivsel.quality): runs in the DAG's quality_gate, where a failing row holds its delivery
-- (delivery_id) of its municipality (municipality_code) instead of stopping every municipality's models.
{{ config(tags=['per_municipality']) }}
select reviews.municipality_code, reviews.delivery_id, reviews.source_row, reviews.case_id
from {{ ref('stg_ohs_case_review__ohs_case_review') }} as reviews
left join {{ ref('stg_ohs_registry_export__ohs_registration') }} as registrations
    on registrations.municipality_code = reviews.municipality_code
    and registrations.case_id = reviews.case_id
where registrations.case_id is null
