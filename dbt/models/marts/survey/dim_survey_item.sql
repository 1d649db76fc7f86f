with items as (
    select * from {{ ref('survey_items') }}
),

item_answers as (
    select * from {{ ref('int_survey_item_answers') }}
),

points as (
    select
        item_code,
        max(scale_points) as scale_points
    from item_answers
    group by item_code
),

final as (
    select
        items.item_code,
        items.dimension_da,
        items.dimension_en,
        items.text_da,
        items.text_en,
        items.scale,
        items.direction,
        points.scale_points
    from items
    inner join points
        on points.item_code = items.item_code
)

select * from final
