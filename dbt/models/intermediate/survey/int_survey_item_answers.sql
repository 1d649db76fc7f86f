{#- Every possible answer to every item: the label, its favourable ordinal (higher = more favourable, from
    the label's intensity and the item's direction), its COPSOQ score and its workbook code. -#}
with items as (
    select * from {{ ref('survey_items') }}
),

scale_labels as (
    select * from {{ ref('survey_scale_labels') }}
),

workbook_codes as (
    select * from {{ ref('survey_workbook_codes') }}
),

item_labels as (
    select
        items.item_code,
        items.scale,
        items.direction,
        scale_labels.label_da as answer_label,
        scale_labels.label_en as answer_label_en,
        scale_labels.scale_points,
        scale_labels.intensity,
        scale_labels.copsoq_score,
        scale_labels.is_non_answer,
        case
            when scale_labels.is_non_answer then null
            when items.direction = 'positive' then scale_labels.intensity
            else scale_labels.scale_points + 1 - scale_labels.intensity
        end as answer_ordinal
    from items
    inner join scale_labels
        on scale_labels.scale = items.scale
),

final as (
    select
        item_labels.item_code,
        item_labels.scale,
        item_labels.direction,
        item_labels.answer_label,
        item_labels.answer_label_en,
        item_labels.scale_points,
        item_labels.intensity,
        item_labels.answer_ordinal,
        item_labels.copsoq_score as answer_score,
        round((item_labels.answer_ordinal - 1) * 100.0 / (item_labels.scale_points - 1), 2)
            as favourable_score,
        item_labels.answer_ordinal > item_labels.scale_points - 2 as is_favourable,
        item_labels.is_non_answer,
        workbook_codes.workbook_code
    from item_labels
    left join workbook_codes
        on workbook_codes.scale = item_labels.scale
        and workbook_codes.direction = item_labels.direction
        and workbook_codes.label_da = item_labels.answer_label
)

select * from final
