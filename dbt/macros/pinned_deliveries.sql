{#-
  The deliveries as this run sees them: with the run's id (trivsel_run_id(): every dbt task of the DAG passes it), the
  status, reason and decision time of each delivery as the run pinned them at its gate (audit.run_snapshot,
  plugins/trivsel/snapshot.py), so every model of one run reads one set of deliveries and a delivery committed
  mid-run waits for the next run. Without the var (`trivsel dbt`, tests), audit.delivery as it is now.
  Columns: those of audit.delivery.
-#}
{% macro pinned_deliveries() -%}
    {%- set run_id = trivsel_run_id() -%}
    {%- if run_id -%}
    select
        d.delivery_id, d.municipality_code, d.source, d.scheme, d.period, d.file_name, d.checksum_sha256,
        d.size_bytes, d.archive_path, d.received_at, pinned.status, pinned.reason, d.rows_loaded, d.run_id,
        pinned.decided_at
    from {{ source('audit', 'delivery') }} as d
    inner join {{ source('audit', 'run_snapshot') }} as pinned
        on pinned.delivery_id = d.delivery_id
    where pinned.run_id = {{ dbt.string_literal(run_id) }}
    {%- else -%}
    select * from {{ source('audit', 'delivery') }}
    {%- endif -%}
{%- endmacro %}


{#-
  The DAG run's id, from the environment variable TRIVSEL_RUN_ID (the DAG's dbt tasks and the quality gate set
  it), else dbt var `run_id` (a manual `dbt --vars`), else ''. Not a dbt var in the DAG: dbt hashes the CLI vars
  into its partial-parse state, so a var that changes every run made the first dbt invocation of every run
  parse the whole project again. Read only when executing (`execute`): an env_var read while parsing is recorded
  in the parse state too, and would send every model that reads it back to the parser each run.
-#}
{% macro trivsel_run_id() -%}
    {%- if execute -%}
        {%- do return(env_var('TRIVSEL_RUN_ID', '') or var('run_id', '')) -%}
    {%- else -%}
        {%- do return(var('run_id', '')) -%}
    {%- endif -%}
{%- endmacro %}
