{#- Fails for every published count from 1 to small_cell_threshold − 1 (certified models: such a count
    must be null with suppressed = true). -#}
{% test not_small_count(model, column_name) %}
select {{ column_name }}
from {{ model }}
where {{ column_name }} between 1 and {{ small_cell_threshold() }} - 1
{% endtest %}
