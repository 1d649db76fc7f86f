{#- The years of a list setting of config/municipalities.yml (settings.baseline_years, settings.followup_years),
    as an int[] SQL expression read at run time: trivsel's config sync writes the list into raw.config_setting
    as '2010,2011,2012' (stg_config__setting), so a change in the file reaches every model without passing dbt
    vars. The dbt var `default_var` (dbt_project.yml, the report's years) only where the setting is absent. -#}
{% macro configured_years(setting_name, default_var) -%}
    coalesce(
        (
            select string_to_array(setting_value, ',')::int[]
            from {{ ref('stg_config__setting') }}
            where setting_name = '{{ setting_name }}'
        ),
        array[{{ var(default_var) | join(', ') }}]::int[]
    )
{%- endmacro %}
