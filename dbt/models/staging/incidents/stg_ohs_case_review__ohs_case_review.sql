with source as (
    {{ loaded_rows('raw', 'ohs_case_review') }}
),

final as (
    select
        delivery_id,
        municipality_code,
        period,
        source_row,
        'ohs_case_review'::text as scheme,
        case_id,
        event_date,
        extract(year from event_date)::integer as year,
        also_violence_label,
        also_violence,
        excluded_label,
        excluded,
        exclusion_reason
    from source
)

select * from final
