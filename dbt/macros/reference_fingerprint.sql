{#-
  reference_fingerprint(relation, columns, order_by, group_by=none, where=none): a subquery returning the
  md5 of the reference rows of `relation` (with `group_by`: one per group, column `fingerprint` beside it),
  for the reference_fingerprint of the models incremental by delivery (macros/incremental_by_delivery.sql).

  Why one macro: the md5 input must be built the same way everywhere (quote_nullable of every column, ','
  between columns, ';' between rows in `order_by` order), and it must stay byte-identical to the one the
  existing rows were derived with, or every delivery is rebuilt. coalesce(…, '') gives an empty relation
  the fingerprint of the empty string; a group always has a row, so for grouped fingerprints it changes
  nothing.
-#}
{% macro reference_fingerprint(relation, columns, order_by, group_by=none, where=none) -%}
    select
        {% if group_by -%}{{ group_by }},{%- endif %}
        md5(coalesce(string_agg(
            concat_ws(',', {% for column in columns %}quote_nullable({{ column }}){{ ", " if not loop.last }}{% endfor %}),
            ';' order by {{ order_by | join(', ') }}), '')) as fingerprint
    from {{ relation }}
    {% if where -%}where {{ where }}{%- endif %}
    {% if group_by -%}group by {{ group_by }}{%- endif %}
{%- endmacro %}
