-- One row per registration and incident class. A registration normally has one class; HT's case review
-- can add 'violence' to a threat registration: still one episode, now with two classes.
with registrations as (
    select * from {{ ref('int_incident_registrations') }}
),

label_map as (
    select * from {{ ref('incident_label_map') }}
),

-- The registry: a near-miss is a near-miss whatever the injury type; an accident takes its injury type's class.
ohs_registry_classes as (
    select
        registrations.episode_id,
        coalesce(event_labels.incident_class, injury_labels.incident_class) as incident_class,
        'registry' as class_basis
    from registrations
    left join label_map as event_labels
        on event_labels.scheme = registrations.scheme
        and event_labels.label_column = 'event_type'
        and event_labels.label = registrations.type_label
    left join label_map as injury_labels
        on injury_labels.scheme = registrations.scheme
        and injury_labels.label_column = 'injury_type'
        and injury_labels.label = registrations.detail_label
    where registrations.scheme = 'ohs_registry_export'
),

-- The case review: violence found in a registered episode is a second class of the same episode.
ohs_review_classes as (
    select
        registrations.episode_id,
        review_labels.incident_class,
        'case_review' as class_basis
    from registrations
    inner join label_map as review_labels
        on review_labels.scheme = 'ohs_case_review'
        and review_labels.label_column = 'also_violence'
        and review_labels.label = registrations.review_violence_label
    where registrations.is_reviewed
        and review_labels.incident_class is not null
),

-- The internal register: the type decides the class; the subtype is detail.
internal_classes as (
    select
        registrations.episode_id,
        type_labels.incident_class,
        'register' as class_basis
    from registrations
    left join label_map as type_labels
        on type_labels.scheme = registrations.scheme
        and type_labels.label_column = 'incident_type'
        and type_labels.label = registrations.type_label
    where registrations.scheme = 'internal_incident_register'
),

all_classes as (
    select * from ohs_registry_classes
    union all
    select * from ohs_review_classes
    union all
    select * from internal_classes
),

deduplicated as (
    select
        episode_id,
        incident_class,
        string_agg(class_basis, ', ' order by class_basis) as class_basis
    from all_classes
    group by episode_id, incident_class
),

final as (
    select
        registrations.episode_id,
        deduplicated.incident_class,
        deduplicated.class_basis,
        registrations.municipality_code,
        registrations.register,
        registrations.scheme,
        registrations.registration_id,
        registrations.year,
        registrations.unit_name,
        registrations.with_absence,
        registrations.is_excluded,
        registrations.exclusion_reason
    from deduplicated
    inner join registrations
        on registrations.episode_id = deduplicated.episode_id
)

select * from final
