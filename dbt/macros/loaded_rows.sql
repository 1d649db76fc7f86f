{#-
  The rows of a raw table that belong to deliveries in status 'loaded'. Deliveries still being
  validated, quarantined or superseded are never visible to staging.
-#}
{% macro loaded_rows(source_name, table_name) -%}
    select r.*
    from {{ source(source_name, table_name) }} as r
    where r.delivery_id in (
        select d.delivery_id
        from {{ source('audit', 'delivery') }} as d
        where d.status = 'loaded'
    )
{%- endmacro %}
