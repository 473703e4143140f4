{#- Helpers for the nested, string-typed shapes Graph lands in the raw layer: each dispatches
    on the adapter (macros/_macros.yml documents them). -#}

{#- struct_field('"from"', 'emailAddress.address') -> "from"."emailAddress"."address" -#}
{%- macro struct_field(expr, path) -%}
    {{ return(adapter.dispatch('struct_field', 'account_engagement')(expr, path)) }}
{%- endmacro -%}

{%- macro default__struct_field(expr, path) -%}
    {#- dotted access with quoted names (DuckDB, BigQuery, Spark/Databricks, Trino rows) -#}
    {{ expr }}{% for field in path.split('.') %}.{{ adapter.quote(field) }}{% endfor %}
{%- endmacro -%}

{%- macro postgres__struct_field(expr, path) -%}
    {#- the nested values are jsonb (loaders/export.py): the last field as text -#}
    {%- set fields = path.split('.') -%}
    ({{ expr }}{% for field in fields[:-1] %} -> '{{ field }}'{% endfor %} ->> '{{ fields[-1] }}')
{%- endmacro -%}

{#-
    unnest_struct_list(list_expr, relation_alias, element_alias, position_alias=none)
        -> a join clause, to write right after the FROM item that holds `list_expr`

    Expands a list column into one row per element: `relation_alias.element_alias` is the
    element (a struct: read it with struct_field), `relation_alias.position_alias` (when
    given) its 1-based position in the list. A null or empty list yields no row (inner join).
-#}
{%- macro unnest_struct_list(list_expr, relation_alias, element_alias, position_alias=none) -%}
    {{ return(adapter.dispatch('unnest_struct_list', 'account_engagement')(
        list_expr, relation_alias, element_alias, position_alias
    )) }}
{%- endmacro -%}

{%- macro default__unnest_struct_list(
    list_expr, relation_alias, element_alias, position_alias=none
) -%}
    {#- Spark/Databricks: a lateral view; transform() numbers the elements from 1 -#}
    lateral view inline(transform({{ list_expr }}, (element, i) -> named_struct(
        '{{ element_alias }}', element, '{{ position_alias or "position" }}', i + 1
    ))) {{ relation_alias }}
{%- endmacro -%}

{%- macro postgres__unnest_struct_list(
    list_expr, relation_alias, element_alias, position_alias=none
) -%}
    cross join lateral jsonb_array_elements({{ list_expr }})
    {%- if position_alias is none %} as {{ relation_alias }} ({{ element_alias }})
    {%- else %} with ordinality as {{ relation_alias }} ({{ element_alias }}, {{ position_alias }})
    {%- endif %}
{%- endmacro -%}

{%- macro duckdb__unnest_struct_list(
    list_expr, relation_alias, element_alias, position_alias=none
) -%}
    {%- if position_alias is none -%}
    cross join unnest({{ list_expr }}) as {{ relation_alias }} ({{ element_alias }})
    {%- else -%}
    {#- not `with ordinality`: on DuckDB 1.4/2.0 it is ~100x slower than a lateral unnest
        (3 M messages: 51 s vs 0.6 s); generate_subscripts gives the same 1-based positions -#}
    cross join lateral (
        select
            unnest({{ list_expr }}) as {{ element_alias }},
            generate_subscripts({{ list_expr }}, 1) as {{ position_alias }}
    ) as {{ relation_alias }}
    {%- endif -%}
{%- endmacro -%}

{#-
    explode_list(list_expr) -> a select-list expression

    One output row per element of `list_expr` (a null or empty list gives none), written in
    the select list: `select id, {{ explode_list('recipients') }} as recipient from t`. On
    DuckDB this form lets a filter on the elements stay cheap, where the join form
    (unnest_struct_list) is planned as a correlated join (3 M messages: 2.7 s vs 26 s).
-#}
{%- macro explode_list(list_expr) -%}
    {{ return(adapter.dispatch('explode_list', 'account_engagement')(list_expr)) }}
{%- endmacro -%}

{%- macro default__explode_list(list_expr) -%}
    {#- DuckDB: unnest() in the select list (Postgres and Spark have their own) -#}
    unnest({{ list_expr }})
{%- endmacro -%}

{%- macro postgres__explode_list(list_expr) -%}
    jsonb_array_elements_text({{ list_expr }})
{%- endmacro -%}

{#- list_of_field('"toRecipients"', 'emailAddress.address') -> the list of that field of each
    element (a struct) of a list, in order: ["a@x.com", ...] -#}
{%- macro list_of_field(list_expr, path) -%}
    {{ return(adapter.dispatch('list_of_field', 'account_engagement')(list_expr, path)) }}
{%- endmacro -%}

{%- macro default__list_of_field(list_expr, path) -%}
    transform({{ list_expr }}, element -> {{ struct_field('element', path) }})
{%- endmacro -%}

{%- macro duckdb__list_of_field(list_expr, path) -%}
    list_transform({{ list_expr }}, lambda element: {{ struct_field('element', path) }})
{%- endmacro -%}

{%- macro postgres__list_of_field(list_expr, path) -%}
    {#- a jsonb array of the fields (an element without the field gives none) -#}
    jsonb_path_query_array({{ list_expr }}, '$[*].{{ path }}')
{%- endmacro -%}

{%- macro spark__explode_list(list_expr) -%}
    explode({{ list_expr }})
{%- endmacro -%}

{#-
    parse_graph_datetime(expr) -> timestamp (without time zone), in UTC

    Graph writes instants as ISO-8601 strings: `2024-03-10T09:00:00Z`, with or without a
    fraction of up to 7 digits, sometimes with a numeric offset, sometimes with no zone at all
    (dateTimeTimeZone values). An explicit `Z` or offset is honoured; a string without one is
    read as UTC. A string that is not a date-time (a date alone included) gives null (never a
    failed build): the staging tests report it.
-#}
{%- macro parse_graph_datetime(expr) -%}
    {{ return(adapter.dispatch('parse_graph_datetime', 'account_engagement')(expr)) }}
{%- endmacro -%}

{%- macro default__parse_graph_datetime(expr) -%}
    {#- Spark: the instant as a wall time in the session's time zone, UTC (README) -#}
    case
        when {{ expr }} rlike '^\s*[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}'
            then cast(try_cast(trim({{ expr }}) as timestamp_ltz) as timestamp)
    end
{%- endmacro -%}

{%- macro duckdb__parse_graph_datetime(expr) -%}
    {#- the shape Graph sends for mail (`2024-03-10T09:00:00Z`) first, by a fixed format: the
        general form below costs six times more (75 M messages: 2.8 s vs 17.5 s), and
        coalesce only evaluates it for the strings the fixed format does not read -#}
    coalesce(
        try_strptime({{ expr }}, '%Y-%m-%dT%H:%M:%SZ'),
        {{ duckdb__parse_graph_datetime_any(expr) }}
    )
{%- endmacro -%}

{%- macro duckdb__parse_graph_datetime_any(expr) -%}
    {#- a string without a zone gets `Z` (UTC); trim() is written once: written twice, the
        engine computes it for every row ahead of the coalesce (75 M messages: +10 s) -#}
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
    that ends with its own zone: `Z` or a numeric offset -#}
{%- macro graph_zone_pattern() -%}
    '[Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]*)?)? ?([Zz]|[+-][0-9]{2}(:?[0-9]{2})?)\s*$'
{%- endmacro -%}

{#- time_zone_names() -> a select of (zone_key, iana_name): every zone name a datetime may
    carry, lower case, Windows names through the seed windows_time_zones (_macros.yml) -#}
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

{#- known_time_zones() -> a relation of the IANA zone names the warehouse knows (`name`) -#}
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

    Converts a local wall time (`2024-03-10T09:00:00.0000000`, Graph's dateTimeTimeZone.dateTime)
    in a named time zone to UTC. `time_zone` is the name as Graph sent it; `iana_zone` the IANA
    name it stands for, joined from time_zone_names() (null for an unknown name). `UTC`,
    `Etc/UTC`, `GMT`, `tzone://Microsoft/Utc` and a null zone mean UTC. A datetime string
    carrying its own `Z`/offset is an instant and keeps it. An unknown zone name gives null
    (never a failed build): the staging tests report it.
-#}
{%- macro to_utc(datetime_string, time_zone, iana_zone) -%}
    {{ return(adapter.dispatch('to_utc', 'account_engagement')(
        datetime_string, time_zone, iana_zone
    )) }}
{%- endmacro -%}

{%- macro default__to_utc(datetime_string, time_zone, iana_zone) -%}
    {#- Spark: the wall time (parsed as if UTC) moved from its zone to UTC -#}
    case
        when {{ is_utc_zone(time_zone) }}
            or trim({{ datetime_string }}) rlike {{ graph_zone_pattern() }}
            then {{ parse_graph_datetime(datetime_string) }}
        else cast(to_utc_timestamp({{ parse_graph_datetime(datetime_string) }}, {{ iana_zone }})
            as timestamp)
    end
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

{#- is_utc_zone(time_zone) -> true when a dateTimeTimeZone's zone name means UTC (or is null) -#}
{%- macro is_utc_zone(time_zone) -%}
    (
        trim({{ time_zone }}) is null
        or lower(trim({{ time_zone }})) in (
            '', 'utc', 'etc/utc', 'gmt', 'etc/gmt', 'z', 'tzone://microsoft/utc'
        )
    )
{%- endmacro -%}
