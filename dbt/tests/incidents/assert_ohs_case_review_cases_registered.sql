-- Every case HT's case review marks is a registration in a loaded registry export of the municipality.
select reviews.municipality_code, reviews.case_id, reviews.delivery_id
from {{ ref('stg_ohs_case_review__ohs_case_review') }} as reviews
left join {{ ref('stg_ohs_registry_export__ohs_registration') }} as registrations
    on registrations.municipality_code = reviews.municipality_code
    and registrations.case_id = reviews.case_id
where registrations.case_id is null
