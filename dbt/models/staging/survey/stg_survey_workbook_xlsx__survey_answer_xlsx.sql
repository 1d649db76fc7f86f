with source as (
    {{ loaded_rows('raw', 'survey_answer_xlsx') }}
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
        item_header,
        lower(regexp_replace(btrim(item_header), '\s+', ' ', 'g')) as item_header_key,
        column_letter,
        answer_value,
        answer_code
    from source
)

select * from final
