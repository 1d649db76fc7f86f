{#- Scalar settings of config/municipalities.yml (settings.*), as text: models cast what they apply. -#}
with source as (
    select * from {{ source('raw', 'config_setting') }}
),

final as (
    select
        setting_name,
        setting_value
    from source
)

select * from final
