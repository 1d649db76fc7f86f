-- Every municipality × register × year × incident class the incident marts must show, and whether it was
-- reported or not delivered. A register a municipality is configured for (config/municipalities.yml, via
-- raw.config_source) but sent nothing for in a year is 'not_delivered', never 0; so is every register of
-- a source the municipality does not deliver at all (Fredericia's use of force). The years are the
-- study years (dbt vars incident_baseline_years + incident_followup_years) and any year delivered.
-- The classes are those the register's schemes can produce (incident_label_map).
with config_sources as (
    select * from {{ ref('stg_config__source') }}
),

deliveries as (
    select * from {{ ref('stg_audit__delivery') }}
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

study_years as (
    select unnest(array{{ var('incident_baseline_years') + var('incident_followup_years') }})::integer as year
    union
    select year from loaded
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

final as (
    select
        register_classes.municipality_code,
        register_classes.register,
        registers.source,
        study_years.year,
        register_classes.incident_class,
        case when delivered_years.year is not null then 'reported' else 'not_delivered' end as status
    from register_classes
    cross join study_years
    inner join registers
        on registers.register = register_classes.register
    left join delivered_years
        on delivered_years.municipality_code = register_classes.municipality_code
        and delivered_years.register = register_classes.register
        and delivered_years.year = study_years.year
)

select * from final
