{#- Helpers of the engagement models; the engine-specific ones dispatch on the adapter
    (macros/_macros.yml documents them). -#}

{#- email_domain(address) -> the part of an email address after its last `@` (null when none). -#}
{%- macro email_domain(address) -%}
    {{ return(adapter.dispatch('email_domain', 'account_engagement')(address)) }}
{%- endmacro -%}

{%- macro default__email_domain(address) -%}
    nullif(regexp_extract({{ address }}, '@([^@]+)$', 1), '')
{%- endmacro -%}

{%- macro postgres__email_domain(address) -%}
    substring({{ address }} from '@([^@]+)$')
{%- endmacro -%}

{#- url_host(url) -> the host name of a website as a CRM writes it, lower case, without
    scheme, user info, port, path, query, fragment or trailing dot:
    'https://www.acme.co.uk/x' -> 'www.acme.co.uk', 'Acme.com:8080' -> 'acme.com'.
    Null when there is none, or when the host is an IP address (no registered domain). -#}
{%- macro url_host(url) -%}
    {{ return(adapter.dispatch('url_host', 'account_engagement')(url)) }}
{%- endmacro -%}

{%- macro postgres__url_host(url) -%}
    nullif(
        regexp_replace(
            rtrim(substring(lower(trim({{ url }})) from {{ url_host_pattern() }}), '.'),
            '^[0-9.]+$',
            ''
        ),
        ''
    )
{%- endmacro -%}

{#- url_host_pattern() -> the regular expression whose first group is a URL's host -#}
{%- macro url_host_pattern() -%}
    '^(?:[a-z][a-z0-9+.\-]*://)?(?:[^/?#@]*@)?([^/?#:\s]+)'
{%- endmacro -%}

{%- macro default__url_host(url) -%}
    {#- DuckDB and Spark (its rtrim(a, b) trims a from b: a regexp trims the dots) -#}
    nullif(
        regexp_replace(
            regexp_replace(
                regexp_extract(lower(trim({{ url }})), {{ url_host_pattern() }}, 1),
                '[.]+$',
                ''
            ),
            '^[0-9.]+$',
            ''
        ),
        ''
    )
{%- endmacro -%}

{#- host_labels(host) -> the number of dot-separated labels of a host name (portable). -#}
{%- macro host_labels(host) -%}
    ({{ dbt.length(host) }} - {{ dbt.length("replace(" ~ host ~ ", '.', '')") }} + 1)
{%- endmacro -%}

{#- last_labels(host, n) -> the last `n` dot-separated labels of a host name
    (last_labels("'www.acme.co.uk'", 2) -> 'co.uk'); '' or null when it has fewer.
    `n` is a whole number known when the model compiles. -#}
{%- macro last_labels(host, n) -%}
    {{ return(adapter.dispatch('last_labels', 'account_engagement')(host, n)) }}
{%- endmacro -%}

{%- macro default__last_labels(host, n) -%}
    regexp_extract({{ host }}, '((?:[^.]+[.]){{ '{' ~ (n - 1) ~ '}' }}[^.]+)$', 1)
{%- endmacro -%}

{%- macro postgres__last_labels(host, n) -%}
    substring({{ host }} from '((?:[^.]+[.]){{ '{' ~ (n - 1) ~ '}' }}[^.]+)$')
{%- endmacro -%}

{#- iso_week_start(date_expr) -> the Monday starting the ISO week of a date, as a date.
    date_trunc('week', ...) is the ISO (Monday) week on DuckDB, Postgres, Spark/Databricks,
    Redshift and Trino. -#}
{%- macro iso_week_start(date_expr) -%}
    cast({{ dbt.date_trunc('week', date_expr) }} as date)
{%- endmacro -%}

{#- seconds_between(start_ts, end_ts) -> the whole seconds from one timestamp to another, a
    bigint: the second boundaries crossed, i.e. the difference of the two timestamps truncated
    to the second (negative when end is before start), the same on every engine. -#}
{%- macro seconds_between(start_ts, end_ts) -%}
    cast({{ dbt.datediff(start_ts, end_ts, 'second') }} as {{ dbt.type_bigint() }})
{%- endmacro -%}

{#- exact_mean(whole_numbers, divisor) -> the mean of a whole-number expression (an integer
    column: seconds), divided by `divisor` (a whole number: 60 for minutes), as a double; null
    when every value is null. Sum and count are exact integers and the division is the only
    rounding, so the result is the same bits whatever the order of the rows and on every
    engine (a floating-point avg() depends on the order of its terms in its last bits). -#}
{%- macro exact_mean(whole_numbers, divisor=1) -%}
    cast(sum({{ whole_numbers }}) as {{ type_double() }})
    / nullif(cast({{ divisor }} * count({{ whole_numbers }}) as {{ type_double() }}), 0)
{%- endmacro -%}

{#-
    engagement_score(components, recency, active, partition_by) -> the EngagementScore
    expression (integer 0-100),
    for a select over one row per account and period (see _marts__docs.md, "EngagementScore").

    components: a list of (name, expression) for the count figures: each is scored
        ln(1 + x) / ln(1 + max of x over the accounts of the same period), 0 when that max is 0.
    recency: the recency figure's expression (0..1, engagement_recency()).
    active: a boolean SQL expression: any email or meeting with the account in the period;
        the score is 0 when false.
    partition_by: the columns of a period (the max of each figure is taken over them).
    The arithmetic is in doubles on every engine (a numeric ln() on PostgreSQL is exact to
    many more digits, and slower by seconds on a year of periods).
    Weights: var('engagement_score_weights'), one per component name plus `recency`;
    non-negative, normalised by their sum.
-#}
{%- macro engagement_score(components, recency, active, partition_by) -%}
    {%- set weights = var('engagement_score_weights') -%}
    {%- set names = components | map(attribute=0) | list + ['recency'] -%}
    {%- set ns = namespace(total=0.0) -%}
    {%- for name in names -%}
        {%- if name not in weights -%}
            {{ exceptions.raise_compiler_error(
                "var engagement_score_weights needs a weight for '" ~ name ~ "' (has: "
                ~ (weights.keys() | list | join(', ')) ~ ")"
            ) }}
        {%- endif -%}
        {%- if weights[name] | float < 0 -%}
            {{ exceptions.raise_compiler_error(
                "var engagement_score_weights." ~ name ~ " must be >= 0, got " ~ weights[name]
            ) }}
        {%- endif -%}
        {%- set ns.total = ns.total + weights[name] | float -%}
    {%- endfor -%}
    {%- if ns.total <= 0 -%}
        {{ exceptions.raise_compiler_error(
            "var engagement_score_weights must have at least one positive weight"
        ) }}
    {%- endif -%}
    {%- set weighted_sum -%}
        100 * (
            {%- for name, expression in components %}
            {{ weights[name] | float / ns.total }} * coalesce(
                ln(1 + cast({{ expression }} as {{ type_double() }}))
                / nullif(ln(1 + cast(
                    max({{ expression }}) over (partition by {{ partition_by }})
                    as {{ type_double() }})), 0),
                0
            )
            +
            {%- endfor %}
            {{ weights['recency'] | float / ns.total }} * {{ recency }}
        )
    {%- endset %}
    case
        when not ({{ active }}) then 0
        else cast({{ round_half_up(weighted_sum) }} as {{ dbt.type_int() }})
    end
{%- endmacro -%}

{#-
    engagement_recency(last_email_date, last_meeting_date, period_end) -> the recency component
    of EngagementScore, a double in 0..1: 2^(-d / half-life), d = whole days from the latest
    of the period's last email and last meeting (date expressions, null when none) to the
    period's last day; 0 when the period holds neither. Half-life:
    var('engagement_score_recency_half_life_days'), > 0. Computed in doubles on every engine
    (Spark's decimal 14.0 would cut the quotient to 6 digits; PostgreSQL's numeric power() is
    exact to 20 digits and slower by seconds).
-#}
{%- macro engagement_recency(last_email_date, last_meeting_date, period_end) -%}
    {%- set half_life = var('engagement_score_recency_half_life_days') | float -%}
    {%- if half_life <= 0 -%}
        {{ exceptions.raise_compiler_error(
            "var engagement_score_recency_half_life_days must be > 0, got "
            ~ var('engagement_score_recency_half_life_days')
        ) }}
    {%- endif -%}
    {%- set last_activity -%}
        case
            when {{ last_meeting_date }} is null then {{ last_email_date }}
            when {{ last_email_date }} is null then {{ last_meeting_date }}
            when {{ last_email_date }} >= {{ last_meeting_date }} then {{ last_email_date }}
            else {{ last_meeting_date }}
        end
    {%- endset -%}
    case
        when {{ last_email_date }} is null and {{ last_meeting_date }} is null then 0.0
        else power(
            cast(0.5 as {{ type_double() }}),
            cast({{ dbt.datediff(last_activity, period_end, 'day') }} as {{ type_double() }})
            / cast({{ half_life }} as {{ type_double() }})
        )
    end
{%- endmacro -%}

{#- round_half_up(value) -> a non-negative double `value` rounded to the nearest whole number,
    halves up: round(value, 0) on DuckDB and Spark. PostgreSQL has no round() of a double to
    a number of places, and its one-argument round() rounds halves to even: floor(value + 0.5)
    gives DuckDB's result. -#}
{%- macro round_half_up(value) -%}
    {{ return(adapter.dispatch('round_half_up', 'account_engagement')(value)) }}
{%- endmacro -%}

{%- macro default__round_half_up(value) -%}
    round({{ value }}, 0)
{%- endmacro -%}

{%- macro postgres__round_half_up(value) -%}
    floor({{ value }} + 0.5)
{%- endmacro -%}

{#- type_double() -> the warehouse's 8-byte floating-point type (dbt.type_float() is 4 bytes on
    DuckDB): the type of the averages of the marts (exact_mean). -#}
{%- macro type_double() -%}
    {{ return(adapter.dispatch('type_double', 'account_engagement')()) }}
{%- endmacro -%}

{%- macro default__type_double() -%}
    double
{%- endmacro -%}

{%- macro postgres__type_double() -%}
    double precision
{%- endmacro -%}
