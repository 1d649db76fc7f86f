{#-
  The `where` of a data test, with two placeholders for the tests of the models incremental by delivery
  (macros/incremental_by_delivery.sql), so that a monthly build tests the rows it wrote, not all history:

    __new_deliveries__    the rows of the deliveries the model's last build wrote;
    __same_keys_as_new__(a, b)  the rows whose (a, b) is the (a, b) of a row the last build wrote: for a
                          uniqueness test whose key includes a and b (municipality_code and month_start, or
                          municipality_code and wave), the only rows a new row can collide with. Every older
                          pair of rows was tested when the later of them was new, so the test of a month reads
                          that month's rows, not every month of the municipalities' history (as
                          the earlier __new_municipalities__, every delivery of their municipalities, did).

  and one for the staging views such a model reads (a view has no xmin to tell the last build by):

    __not_yet_in__(schema.model)  the rows of the loaded deliveries (as the run pinned them) that the
                          incremental model schema.model does not hold yet: the ones its next build adds. A
                          delivery is tested while it is new, and again until it is built (a failing test
                          keeps it out), not in every later month: the tests read one month, not all history.
                          Every row while the model does not exist.

  Replaced here, at run time (dbt renders a YAML `where` at parse time, without custom macros; this macro,
  dbt's documented hook for it, runs when the test runs). With --full-refresh they are `true`: everything is
  tested. "The last build" is read from PostgreSQL, not from dbt state: the rows a build writes are inserted
  by one transaction (create table as, or delete+insert), so they share one xmin, and the newest xmin
  (smallest age) among the deliveries marks that build's deliveries. A first build or a full rebuild writes
  every delivery in one transaction, so every row is tested; a build with nothing new leaves the table as it
  was and re-tests its last batch. One index probe per delivery (the delivery_id index), never a scan of the
  table's rows.
-#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where -%}
        {%- if '__new_deliveries__' in where -%}
            {%- set where = where | replace('__new_deliveries__', last_built_deliveries_condition(relation)) -%}
        {%- endif -%}
        {%- if '__same_keys_as_new__(' in where -%}  {#- one per `where`, as __not_yet_in__ -#}
            {%- set args = where.split('__same_keys_as_new__(')[1].split(')')[0] -%}
            {%- set columns = [] -%}
            {%- for column in args.split(',') -%}{%- do columns.append(column | trim) -%}{%- endfor -%}
            {%- set where = where | replace('__same_keys_as_new__(' ~ args ~ ')',
                                            same_keys_as_new_condition(relation, columns)) -%}
        {%- endif -%}
        {%- if '__not_yet_in__(' in where -%}  {#- one per `where` (a set inside a for loop would not leave it) -#}
            {%- set name = where.split('__not_yet_in__(')[1].split(')')[0] -%}
            {%- set where = where | replace('__not_yet_in__(' ~ name ~ ')',
                                            deliveries_not_yet_in_condition(name.split('.')[0], name.split('.')[1])) -%}
        {%- endif -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}

{#- A condition on delivery_id: the deliveries of `relation` written by its last build; `true` on
    --full-refresh. -#}
{% macro last_built_deliveries_condition(relation) -%}
    {%- if flags.FULL_REFRESH -%}
    (true)
    {%- else -%}
    (delivery_id = any(array(
        with recursive {{ delivery_ids_cte(relation) }},

        written as (
            select
                delivery_ids.delivery_id,
                age(any_row.xmin) as age
            from delivery_ids
            cross join lateral (
                select one_row.xmin
                from {{ relation }} as one_row
                where one_row.delivery_id = delivery_ids.delivery_id
                limit 1
            ) as any_row
        ),

        last_built as (
            select * from written
            where age = (select min(age) from written)
        )

        select delivery_id from last_built
    )))
    {%- endif -%}
{%- endmacro %}

{#- A condition on `columns`: their values are those of a row that the last build of `relation` wrote
    (last_built_deliveries_condition); `true` on --full-refresh. -#}
{% macro same_keys_as_new_condition(relation, columns) -%}
    {%- if flags.FULL_REFRESH -%}
    (true)
    {%- else -%}
    (({{ columns | join(', ') }}) in (
        select distinct {{ columns | join(', ') }}
        from {{ relation }} as new_rows
        where {{ last_built_deliveries_condition(relation) }}
    ))
    {%- endif -%}
{%- endmacro %}

{#- A condition on delivery_id: the loaded deliveries (pinned by the run, trivsel_run_id(), else audit.delivery as
    it is) not in the incremental model `schema_name.identifier`; `true` on --full-refresh or while the model
    does not exist. Named relations, not source()/ref(): this renders at run time, inside a data test of a
    staging view, which depends on neither. -#}
{% macro deliveries_not_yet_in_condition(schema_name, identifier) -%}
    {%- set built = adapter.get_relation(database=target.database, schema=schema_name, identifier=identifier) -%}
    {%- if flags.FULL_REFRESH or built is none -%}
    (true)
    {%- else -%}
    {%- set run_id = trivsel_run_id() -%}
    (delivery_id = any(array(
        select d.delivery_id
        from audit.delivery as d
        {% if run_id -%}
        inner join audit.run_snapshot as pinned
            on pinned.delivery_id = d.delivery_id and pinned.run_id = {{ dbt.string_literal(run_id) }}
        where pinned.status = 'loaded'
        {%- else -%}
        where d.status = 'loaded'
        {%- endif %}
            and not exists (
                select 1 from {{ built }} as present
                where present.delivery_id = d.delivery_id
            )
    )))
    {%- endif -%}
{%- endmacro %}
