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
        {{ reference_fingerprint(ref('absence_codes'), ['absence_code', 'counts_as_sick_leave', 'category'],
                                 ['absence_code', 'category'], where="scheme = 'hr_payroll_csv'") }}
    ) as codes
    left join (
        {{ reference_fingerprint(ref('int_units'), ['name_as_registered', 'unit_name'],
                                 ['name_as_registered', 'unit_name'], group_by='municipality_code') }}
    ) as units
        on units.municipality_code = deliveries.municipality_code
    where deliveries.status = 'loaded'
        and deliveries.source = 'hr_absence'
{%- endmacro %}
