{#-
  Post-hook of every marts and reporting model (dbt_project.yml): re-grant the table to the reader roles
  and, in marts, re-enable row-level security for the municipality_<code> roles. dbt's table
  materialization recreates the table on every build, which drops grants and policies; this runs in the
  same transaction, so a new table is never readable by a municipality role without its policy. A model
  built in schema person (one row per person) gets no reader grant at all; a marts table without a policy
  that is not in roles.NON_SENSITIVE gets no municipality grant (default-deny).
  The function is installed by plugins/trivsel/roles.py (trivsel roles apply / the DAG's plan step);
  where it is not installed (roles never applied) the hook does nothing.
-#}
{% macro trivsel_secure(relation) -%}
do $trivsel_secure$
begin
    if to_regprocedure('audit.trivsel_secure_table(text,text)') is not null then
        perform audit.trivsel_secure_table('{{ relation.schema }}', '{{ relation.identifier }}');
    end if;
end
$trivsel_secure$
{%- endmacro %}
