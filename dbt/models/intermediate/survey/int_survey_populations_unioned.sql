with csv_populations as (
    select * from {{ ref('stg_survey_population_csv__survey_population_csv') }}
),

xlsx_populations as (
    select * from {{ ref('stg_survey_workbook_xlsx__survey_population_xlsx') }}
),

final as (
    select
        delivery_id,
        'survey_population_csv' as scheme,
        municipality_code,
        period,
        source_row,
        unit_name,
        wave,
        target_population
    from csv_populations
    union all
    select
        delivery_id,
        'survey_workbook_xlsx' as scheme,
        municipality_code,
        period,
        source_row,
        unit_name,
        wave,
        target_population
    from xlsx_populations
)

select * from final
