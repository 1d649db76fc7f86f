with source as (
    {{ loaded_rows('raw', 'survey_answer_csv') }}
),

final as (
    select
        delivery_id,
        municipality_code,
        period,
        source_row,
        respondent_id,
        unit_name,
        wave,
        item_code,
        answer_label
    from source
)

select * from final
