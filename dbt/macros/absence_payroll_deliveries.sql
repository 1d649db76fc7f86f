{#-
  The loaded hr_absence deliveries with the reference_fingerprint their payroll rows are derived with in
  int_absence__employee_month: an md5 of the absence_codes seed rows of hr_payroll_csv, of the
  municipality's int_units names (config units and the unit_aliases seed) and of var absence_hours_per_day.
  When any of these changes, the fingerprint of the affected deliveries changes and the incremental model
  rebuilds them (macros/incremental_by_delivery.sql). Returns (delivery_id, municipality_code,
  reference_fingerprint).
-#}
{% macro absence_payroll_deliveries() -%}
    select
        deliveries.delivery_id,
        deliveries.municipality_code,
        md5(concat_ws('|',
            codes.fingerprint,
            coalesce(units.fingerprint, 'no units'),
            '{{ var("absence_hours_per_day", 7.4) }}'
        )) as reference_fingerprint
    from ({{ pinned_deliveries() }}) as deliveries
    cross join (
        select md5(coalesce(string_agg(
            concat_ws(',', quote_nullable(absence_code), quote_nullable(counts_as_sick_leave),
                      quote_nullable(category)),
            ';' order by absence_code, category), '')) as fingerprint
        from {{ ref('absence_codes') }}
        where scheme = 'hr_payroll_csv'
    ) as codes
    left join (
        select
            municipality_code,
            md5(string_agg(concat_ws(',', quote_nullable(name_as_registered), quote_nullable(unit_name)),
                           ';' order by name_as_registered, unit_name)) as fingerprint
        from {{ ref('int_units') }}
        group by municipality_code
    ) as units
        on units.municipality_code = deliveries.municipality_code
    where deliveries.status = 'loaded'
        and deliveries.source = 'hr_absence'
{%- endmacro %}
