-- One row per registration in the registration-level registers (HT's occupational-injury registry export
-- with its case review, Fredericia's internal register): one episode each, with its canonical unit and,
-- where a case review excluded it, the flag and the reason. Excluded episodes stay; nothing is deleted.
with ohs_registrations as (
    select * from {{ ref('stg_ohs_registry_export__ohs_registration') }}
),

ohs_reviews as (
    select * from {{ ref('stg_ohs_case_review__ohs_case_review') }}
),

internal_registrations as (
    select * from {{ ref('stg_internal_incident_register__internal_incident') }}
),

units as (
    select * from {{ ref('int_units') }}
),

absence_labels as (
    select * from {{ ref('incident_with_absence') }}
),

schemes as (
    select * from {{ ref('incident_scheme') }}
),

ohs as (
    select
        ohs_registrations.municipality_code,
        ohs_registrations.scheme,
        ohs_registrations.case_id as registration_id,
        ohs_registrations.event_date,
        ohs_registrations.year,
        ohs_registrations.unit_label,
        ohs_registrations.event_type as type_label,
        ohs_registrations.injury_type as detail_label,
        absence_labels.with_absence,
        ohs_reviews.case_id is not null as is_reviewed,
        ohs_reviews.also_violence_label as review_violence_label,
        coalesce(ohs_reviews.excluded, false) as is_excluded,
        case when ohs_reviews.excluded then ohs_reviews.exclusion_reason end as exclusion_reason,
        ohs_registrations.description,
        ohs_registrations.delivery_id,
        ohs_registrations.source_row
    from ohs_registrations
    left join ohs_reviews
        on ohs_reviews.municipality_code = ohs_registrations.municipality_code
        and ohs_reviews.case_id = ohs_registrations.case_id
    left join absence_labels
        on absence_labels.scheme = ohs_registrations.scheme
        and absence_labels.label = ohs_registrations.absence_label
),

internal as (
    select
        municipality_code,
        scheme,
        incident_id as registration_id,
        event_date,
        year,
        unit_label,
        incident_type as type_label,
        subtype as detail_label,
        null::boolean as with_absence,
        false as is_reviewed,
        null::text as review_violence_label,
        false as is_excluded,
        null::text as exclusion_reason,
        description,
        delivery_id,
        source_row
    from internal_registrations
),

registrations as (
    select * from ohs
    union all
    select * from internal
),

final as (
    select
        md5(concat_ws('|', registrations.municipality_code, registrations.scheme, registrations.registration_id))
            as episode_id,
        registrations.municipality_code,
        schemes.register,
        registrations.scheme,
        registrations.registration_id,
        registrations.event_date,
        registrations.year,
        registrations.unit_label,
        units.unit_name,
        registrations.type_label,
        registrations.detail_label,
        registrations.with_absence,
        registrations.is_reviewed,
        registrations.review_violence_label,
        registrations.is_excluded,
        registrations.exclusion_reason,
        registrations.description,
        registrations.delivery_id,
        registrations.source_row
    from registrations
    inner join schemes
        on schemes.scheme = registrations.scheme
    left join units
        on units.municipality_code = registrations.municipality_code
        and units.name_as_registered = registrations.unit_label
)

select * from final
