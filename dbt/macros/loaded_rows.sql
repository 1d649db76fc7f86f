{#-
  The rows of a raw table that belong to deliveries in status 'loaded'. Deliveries still being
  validated, quarantined or superseded are never visible to staging; in a DAG run, 'loaded' as the run
  pinned it at its gate (pinned_deliveries).
-#}
{% macro loaded_rows(source_name, table_name) -%}
    select r.*
    from {{ source(source_name, table_name) }} as r
    where r.delivery_id in (
        select d.delivery_id
        from ({{ pinned_deliveries() }}) as d
        where d.status = 'loaded'
    )
{%- endmacro %}
