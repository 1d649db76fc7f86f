{#-
  Incremental models keyed by delivery (the absence employee-month chain).

  Every row of such a model carries the delivery_id it was derived from and a reference_fingerprint: an
  md5 of the reference data it was derived with. All rows of one delivery are written together and share
  one fingerprint, so the state of a model is the small set of (delivery_id, reference_fingerprint) pairs
  it holds. An incremental run
    1. deletes (pre-hook, delete_stale_deliveries) every delivery whose pair is not among the pairs the
       model should hold now: a delivery no longer 'loaded' (superseded by a correction, quarantined,
       removed) or one derived with reference data that has changed since;
    2. selects only the deliveries not (or no longer) in the model (new_deliveries_filter).
  The result equals a full rebuild; a run with nothing new or stale touches no rows.

  delivery_fingerprints(relation): the distinct (delivery_id, reference_fingerprint) pairs of a relation
    that has an index on delivery_id, read by a loose index scan (one index probe per delivery, not a scan
    of the table's millions of rows).
  delete_stale_deliveries(relation, current): delete the rows of relation whose delivery's pair is not in
    `current`, a query returning (delivery_id, reference_fingerprint).
  new_deliveries_filter(relation, current): a condition on delivery_id: a delivery of `current` that is
    not in relation (the upstream's delivery_id index serves it).

  The five models share their config and filter through two macros (one definition, not five copies):
  incremental_by_delivery_config(current): the config of such a model, `{{ config(**incremental_by_delivery_config(
    "absence_payroll_deliveries()")) }}`; `current` is the Jinja expression (text) of the model's wanted
    (delivery_id, reference_fingerprint) pairs, rendered by the pre-hook when it runs.
  only_new_deliveries(current): `where <new_deliveries_filter>` on an incremental run, nothing on a full build.

  Their incremental strategy is `insert_new_deliveries` (get_incremental_insert_new_deliveries_sql below): the
  model's selection inserted straight into the model, one statement. dbt-postgres' `delete+insert` wrote every
  new row twice: the selection into a temporary table, then a delete from the model of the temporary table's
  delivery ids (it never matches: the pre-hook removed the stale deliveries, and only_new_deliveries selects
  only deliveries the model does not hold) and an insert of the temporary table's rows. dbt's incremental
  materialization still creates that temporary table (its columns are what on_schema_change and
  expand_target_column_types compare with the model); for this strategy it is created empty
  (postgres__get_create_table_as_sql below). The rows of one build are written by one statement of the build's
  one transaction (the pre-hook's delete is in it too), so they share one xmin, as
  macros/tests/get_where_subquery.sql needs.
-#}
{% macro incremental_by_delivery_config(current) -%}
    {%- do return({
        'materialized': 'incremental',
        'incremental_strategy': 'insert_new_deliveries',
        'on_schema_change': 'fail',
        'indexes': [{'columns': ['delivery_id']}],
        'pre_hook': '{% if is_incremental() %}{{ delete_stale_deliveries(this, ' ~ current ~ ') }}{% endif %}',
    }) -%}
{%- endmacro %}

{#- The strategy `insert_new_deliveries`: the model's compiled selection (`sql`, what dbt's materialization
    puts into its temporary table) inserted into the model in one statement, in the columns the materialization
    read from the model. -#}
{% macro get_incremental_insert_new_deliveries_sql(arg_dict) -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    insert into {{ arg_dict['target_relation'] }} ({{ columns }})
    select {{ columns }}
    from (
        {{ sql }}
    ) as new_deliveries
{%- endmacro %}

{#- dbt's incremental materialization creates its temporary table with get_create_table_as_sql(True, temp, sql)
    before it calls the strategy. For insert_new_deliveries, which never reads it, the table is created empty
    (dbt's get_empty_subquery_sql: the selection's columns without running it); every other table, temporary
    or not, exactly as dbt-postgres creates it (default__get_create_table_as_sql: dbt-postgres has no
    postgres__ version of its own; tests/platform/test_dbt_incremental_strategy.py fails if it gets one). -#}
{% macro postgres__get_create_table_as_sql(temporary, relation, sql) -%}
    {%- set strategy = config.get('incremental_strategy') if config is defined else none -%}
    {%- if temporary and strategy == 'insert_new_deliveries' -%}
        {{ default__get_create_table_as_sql(temporary, relation, get_empty_subquery_sql(sql)) }}
    {%- else -%}
        {{ default__get_create_table_as_sql(temporary, relation, sql) }}
    {%- endif -%}
{%- endmacro %}

{% macro only_new_deliveries(current) -%}
    {%- if is_incremental() -%}
    where {{ new_deliveries_filter(this, current) }}
    {%- endif -%}
{%- endmacro %}

{% macro delivery_fingerprints(relation) -%}
    with recursive {{ delivery_ids_cte(relation) }}

    select
        delivery_ids.delivery_id,
        (
            select any_row.reference_fingerprint
            from {{ relation }} as any_row
            where any_row.delivery_id = delivery_ids.delivery_id
            limit 1
        ) as reference_fingerprint
    from delivery_ids
    where delivery_ids.delivery_id is not null
{%- endmacro %}

{% macro delete_stale_deliveries(relation, current) -%}
    delete from {{ relation }}
    where delivery_id in (
        select present.delivery_id
        from ({{ delivery_fingerprints(relation) }}) as present
        where not exists (
            select 1
            from ({{ current }}) as wanted
            where wanted.delivery_id = present.delivery_id
                and wanted.reference_fingerprint = present.reference_fingerprint
        )
    )
{%- endmacro %}

{#- = any(array(...)): an index scan of the upstream rows of the few new deliveries, where a semi-join is
    planned as a scan of every delivery's rows -#}
{% macro new_deliveries_filter(relation, current) -%}
    delivery_id = any(array(
        select wanted.delivery_id
        from ({{ current }}) as wanted
        where not exists (
            select 1
            from {{ relation }} as present
            where present.delivery_id = wanted.delivery_id
        )
    ))
{%- endmacro %}


{#- The CTE `delivery_ids`: every distinct delivery_id of `relation`, by a loose index scan (one probe of
    its delivery_id index per delivery, not a scan of its rows). Used as `with recursive {{ delivery_ids_cte(r) }}`. -#}
{% macro delivery_ids_cte(relation) -%}
    delivery_ids as (
        select min(delivery_id) as delivery_id
        from {{ relation }}
        union all
        select (
            select min(next_row.delivery_id)
            from {{ relation }} as next_row
            where next_row.delivery_id > delivery_ids.delivery_id
        )
        from delivery_ids
        where delivery_ids.delivery_id is not null
    )
{%- endmacro %}
