-- Every municipality × register × year × incident class the incident marts must show, and its status:
--   reported            a registration or count scheme of the register was loaded for the year, and no file
--                       of the register's schemes for the year stands quarantined;
--   partly_quarantined  loaded, but another file of the register's schemes for the year (e.g. its case
--                       review) is quarantined: the counts are shown, incomplete, and no test uses them;
--   quarantined         files came for the year, none of its registration/count schemes loaded, one is
--                       quarantined (never 'not_delivered': the municipality did deliver);
--   waiting             a file is held until it can be matched (a case review before its registry export);
--   not_delivered       nothing came, never 0.
-- "Stands quarantined" = open in int_delivery_states (not replaced by a later loaded file of its scheme).
-- A register a municipality is configured for (config/municipalities.yml, via raw.config_source) but sent
-- nothing for in a year is 'not_delivered'; so is every register of a source the municipality does not
-- deliver at all (Fredericia's use of force). The years are the study years (settings.baseline_years +
-- followup_years, macro configured_years) and any year delivered or quarantined.
-- The classes are those the register's schemes can produce (incident_label_map).
with config_sources as (
    select * from {{ ref('stg_config__source') }}
),

deliveries as (
    select * from {{ ref('int_delivery_states') }}
),

schemes as (
    select * from {{ ref('incident_scheme') }}
),

registers as (
    select * from {{ ref('incident_register') }}
),

label_map as (
    select * from {{ ref('incident_label_map') }}
),

scheme_classes as (
    select distinct
        scheme,
        incident_class
    from label_map
    where incident_class is not null
),

loaded as (
    select
        deliveries.municipality_code,
        deliveries.scheme,
        left(deliveries.period, 4)::integer as year
    from deliveries
    inner join schemes
        on schemes.scheme = deliveries.scheme
    where deliveries.status = 'loaded'
),

-- Files of a register's schemes for a year that stand quarantined or waiting.
open_files as (
    select
        deliveries.municipality_code,
        deliveries.scheme,
        schemes.register,
        left(deliveries.period, 4)::integer as year,
        deliveries.status
    from deliveries
    inner join schemes
        on schemes.scheme = deliveries.scheme
    where deliveries.is_open
),

study_years as (
    select unnest({{ configured_years('baseline_years', 'incident_baseline_years') }}
                  || {{ configured_years('followup_years', 'incident_followup_years') }}) as year
    union
    select year from loaded
    union
    select year from open_files
),

configured_schemes as (
    select
        config_sources.municipality_code,
        trim(configured.scheme) as scheme
    from config_sources
    cross join lateral unnest(string_to_array(config_sources.schemes, ',')) as configured (scheme)
    where config_sources.delivers
),

-- The schemes that make up each municipality's registers: configured or seen delivered. A case review
-- adds classes (violence) to a register, but a register counts as delivered in a year only when one of
-- its registration or count schemes was (delivered_years).
municipality_schemes as (
    select configured_schemes.municipality_code, configured_schemes.scheme
    from configured_schemes
    inner join schemes
        on schemes.scheme = configured_schemes.scheme
    union
    select municipality_code, scheme
    from loaded
    union
    select municipality_code, scheme
    from open_files
),

delivering_registers as (
    select
        municipality_schemes.municipality_code,
        schemes.register,
        scheme_classes.incident_class
    from municipality_schemes
    inner join schemes
        on schemes.scheme = municipality_schemes.scheme
    inner join scheme_classes
        on scheme_classes.scheme = municipality_schemes.scheme
),

-- A source the municipality does not deliver: every register of that source, every class it can hold.
absent_registers as (
    select
        config_sources.municipality_code,
        registers.register,
        scheme_classes.incident_class
    from config_sources
    inner join registers
        on registers.source = config_sources.source
    inner join schemes
        on schemes.register = registers.register
    inner join scheme_classes
        on scheme_classes.scheme = schemes.scheme
    where not config_sources.delivers
),

register_classes as (
    select * from delivering_registers
    union
    select * from absent_registers
),

delivered_years as (
    select distinct
        loaded.municipality_code,
        schemes.register,
        loaded.year
    from loaded
    inner join schemes
        on schemes.scheme = loaded.scheme
    where schemes.granularity <> 'review'
),

open_years as (
    select
        municipality_code,
        register,
        year,
        bool_or(status = 'quarantined') as any_quarantined,
        bool_or(status = 'waiting') as any_waiting
    from open_files
    group by municipality_code, register, year
),

final as (
    select
        register_classes.municipality_code,
        register_classes.register,
        registers.source,
        study_years.year,
        register_classes.incident_class,
        case
            when delivered_years.year is not null and open_years.any_quarantined then 'partly_quarantined'
            when delivered_years.year is not null then 'reported'
            when open_years.any_quarantined then 'quarantined'
            when open_years.any_waiting then 'waiting'
            else 'not_delivered'
        end as status
    from register_classes
    cross join study_years
    inner join registers
        on registers.register = register_classes.register
    left join delivered_years
        on delivered_years.municipality_code = register_classes.municipality_code
        and delivered_years.register = register_classes.register
        and delivered_years.year = study_years.year
    left join open_years
        on open_years.municipality_code = register_classes.municipality_code
        and open_years.register = register_classes.register
        and open_years.year = study_years.year
)

select * from final
