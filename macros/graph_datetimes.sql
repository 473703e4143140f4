{#- Graph's date-times to UTC timestamps: instants written as ISO-8601 strings
    (parse_graph_datetime), local wall times with a time-zone name (to_utc, with the names of
    time_zone_names and is_utc_zone), and the pattern of a string carrying its own zone. The
    engine-specific ones dispatch on the adapter: `spark__` is Spark SQL, `default__` what
    every other engine shares (macros/_macros.yml). -#}

{#-
    parse_graph_datetime(expr) -> timestamp (without time zone), in UTC
        expr: SQL expression of a string: the date-time as Graph wrote it.

    Graph writes instants as ISO-8601 strings: `2024-03-10T09:00:00Z`, with or without a
    fraction of up to 7 digits, sometimes with a numeric offset, sometimes with no zone at all
    (dateTimeTimeZone values). An explicit `Z` or offset is honoured; a string without one is
    read as UTC. A string that is not a date-time (a date alone included) gives null (never a
    failed build): the staging tests report it.
-#}
{%- macro parse_graph_datetime(expr) -%}
    {{ return(adapter.dispatch('parse_graph_datetime', 'account_engagement')(expr)) }}
{%- endmacro -%}

{#- Spark SQL (Spark, Databricks) -#}
{%- macro spark__parse_graph_datetime(expr) -%}
    {#- Spark: the instant as a wall time in the session's time zone, UTC (docs/engines.md,
        'Settings a Spark cluster needs') -#}
    case
        when {{ expr }} rlike '^\s*[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}'
            then cast(try_cast(trim({{ expr }}) as timestamp_ltz) as timestamp)
    end
{%- endmacro -%}

{#- Other adapters (dbt-fabricspark, Synapse) run Spark SQL and do not dispatch to spark__
    themselves. -#}
{%- macro default__parse_graph_datetime(expr) -%}
    {{ return(account_engagement.spark__parse_graph_datetime(expr)) }}
{%- endmacro -%}

{%- macro duckdb__parse_graph_datetime(expr) -%}
    {#- the shape Graph sends for mail (`2024-03-10T09:00:00Z`) first, by a fixed format: the
        general form below costs far more, and coalesce only evaluates it for the strings the
        fixed format does not read -#}
    coalesce(
        try_strptime({{ expr }}, '%Y-%m-%dT%H:%M:%SZ'),
        {{ duckdb__parse_graph_datetime_any(expr) }}
    )
{%- endmacro -%}

{#- duckdb__parse_graph_datetime_any(expr) -> DuckDB's general form of parse_graph_datetime
    (called by duckdb__parse_graph_datetime, not dispatched)
        expr: SQL expression of a string: the date-time as Graph wrote it. -#}
{%- macro duckdb__parse_graph_datetime_any(expr) -%}
    {#- a string without a zone gets `Z` (UTC); trim() is written once: written twice, the
        engine computes it for every row ahead of the coalesce -#}
    timezone('UTC', try_cast(
        trim({{ expr }})
        || case when regexp_matches({{ expr }}, {{ graph_zone_pattern() }}) then '' else 'Z' end
        as timestamptz
    ))
{%- endmacro -%}

{%- macro postgres__parse_graph_datetime(expr) -%}
    {#- no try_cast on Postgres 15: only a string shaped like a date-time is cast -#}
    case
        when {{ expr }} ~ '^\s*[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}'
            then cast(
                trim({{ expr }})
                || case when {{ expr }} ~ {{ graph_zone_pattern() }} then '' else 'Z' end
                as timestamptz
            ) at time zone 'UTC'
    end
{%- endmacro -%}

{#- graph_zone_pattern() -> a regular expression (a SQL string) matching a date-time string
    that ends with its own zone: `Z` or a numeric offset. No arguments. -#}
{%- macro graph_zone_pattern() -%}
    '[Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]*)?)? ?([Zz]|[+-][0-9]{2}(:?[0-9]{2})?)\s*$'
{%- endmacro -%}

{#- time_zone_names() -> a select of (zone_key, iana_name): every zone name a datetime may
    carry, lower case, Windows names through the seed windows_time_zones (_macros.yml).
    No arguments. -#}
{%- macro time_zone_names() -%}
    {%- set known_zones = adapter.dispatch('known_time_zones', 'account_engagement')() -%}
    select
        lower(windows_zone.windows_name) as zone_key,
        min(known_zone.name) as iana_name
    from {{ ref('windows_time_zones') }} as windows_zone
    inner join {{ known_zones }} as known_zone
        on lower(windows_zone.iana_name) = lower(known_zone.name)
    group by lower(windows_zone.windows_name)

    union all

    select
        lower(known_zone.name) as zone_key,
        min(known_zone.name) as iana_name
    from {{ known_zones }} as known_zone
    where lower(known_zone.name) not in (
        select lower(windows_name) from {{ ref('windows_time_zones') }}
    )
    group by lower(known_zone.name)
{%- endmacro -%}

{#- known_time_zones() -> a relation of the IANA zone names the warehouse knows (`name`).
    No arguments. Dispatched by name (time_zone_names, the test known_time_zone): there is no
    undispatched known_time_zones. default__ reads the seed, plain SQL any engine runs (Spark
    and Databricks included); DuckDB and Postgres have their own list. -#}
{%- macro default__known_time_zones() -%}
    (select distinct iana_name as name from {{ ref('windows_time_zones') }})
{%- endmacro -%}

{%- macro duckdb__known_time_zones() -%}
    pg_timezone_names()
{%- endmacro -%}

{%- macro postgres__known_time_zones() -%}
    pg_timezone_names
{%- endmacro -%}

{#-
    to_utc(datetime_string, time_zone, iana_zone) -> timestamp (without time zone), in UTC
        datetime_string: SQL expression of a string: the local wall time
            (`2024-03-10T09:00:00.0000000`, Graph's dateTimeTimeZone.dateTime).
        time_zone: SQL expression: the time-zone name as Graph sent it.
        iana_zone: SQL expression: the IANA name it stands for, joined from time_zone_names()
            (null for an unknown name).

    Converts a local wall time in a named time zone to UTC. `UTC`, `Etc/UTC`, `GMT`,
    `tzone://Microsoft/Utc` and a null zone mean UTC. A datetime string carrying its own
    `Z`/offset is an instant and keeps it. An unknown zone name gives null (never a failed
    build): the staging tests report it.
-#}
{%- macro to_utc(datetime_string, time_zone, iana_zone) -%}
    {{ return(adapter.dispatch('to_utc', 'account_engagement')(
        datetime_string, time_zone, iana_zone
    )) }}
{%- endmacro -%}

{#- Spark SQL (Spark, Databricks) -#}
{%- macro spark__to_utc(datetime_string, time_zone, iana_zone) -%}
    {#- Spark: the wall time (parsed as if UTC) moved from its zone to UTC -#}
    case
        when {{ is_utc_zone(time_zone) }}
            or trim({{ datetime_string }}) rlike {{ graph_zone_pattern() }}
            then {{ parse_graph_datetime(datetime_string) }}
        else cast(to_utc_timestamp({{ parse_graph_datetime(datetime_string) }}, {{ iana_zone }})
            as timestamp)
    end
{%- endmacro -%}

{#- Other adapters (dbt-fabricspark, Synapse) run Spark SQL and do not dispatch to spark__
    themselves. -#}
{%- macro default__to_utc(datetime_string, time_zone, iana_zone) -%}
    {{ return(account_engagement.spark__to_utc(datetime_string, time_zone, iana_zone)) }}
{%- endmacro -%}

{%- macro duckdb__to_utc(datetime_string, time_zone, iana_zone) -%}
    case
        when
            {{ is_utc_zone(time_zone) }}
            or regexp_matches(trim({{ datetime_string }}), {{ graph_zone_pattern() }})
            then {{ parse_graph_datetime(datetime_string) }}
        {#- an unknown zone (no IANA name): null -#}
        else timezone(
            'UTC',
            timezone({{ iana_zone }}, try_cast(trim({{ datetime_string }}) as timestamp))
        )
    end
{%- endmacro -%}

{%- macro postgres__to_utc(datetime_string, time_zone, iana_zone) -%}
    case
        when
            {{ is_utc_zone(time_zone) }}
            or trim({{ datetime_string }}) ~ {{ graph_zone_pattern() }}
            then {{ parse_graph_datetime(datetime_string) }}
        -- an unknown zone (no IANA name): null
        when {{ datetime_string }} ~ '^\s*[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}'
            then (cast(trim({{ datetime_string }}) as timestamp) at time zone {{ iana_zone }})
                at time zone 'UTC'
    end
{%- endmacro -%}

{#- is_utc_zone(time_zone) -> a condition: true when a dateTimeTimeZone's zone name means UTC
    (or is null or blank)
        time_zone: SQL expression: the time-zone name as Graph sent it. -#}
{%- macro is_utc_zone(time_zone) -%}
    (
        trim({{ time_zone }}) is null
        or lower(trim({{ time_zone }})) in (
            '', 'utc', 'etc/utc', 'gmt', 'etc/gmt', 'z', 'tzone://microsoft/utc'
        )
    )
{%- endmacro -%}
