{#- EngagementScore (models/marts/_marts__docs.md, "EngagementScore"): the score of an account
    in a period from its figures (engagement_score), its recency component
    (engagement_recency), and the rounding of the score, halves up on every engine
    (round_half_up, which dispatches on the adapter; macros/_macros.yml). -#}

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
    many more digits, and slower).
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
    of the period's last email and last meeting to the period's last day; 0 when the period
    holds neither.
        last_email_date: SQL expression of a date: the period's last email with the account,
            null when none.
        last_meeting_date: SQL expression of a date: the period's last meeting with the
            account, null when none.
        period_end: SQL expression of a date: the period's last day.
    Half-life: var('engagement_score_recency_half_life_days'), > 0. Computed in doubles on
    every engine (Spark's decimal 14.0 would cut the quotient to 6 digits; PostgreSQL's
    numeric power() is exact to 20 digits and slower).
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
    gives DuckDB's result.
        value: SQL expression of a non-negative double. -#}
{%- macro round_half_up(value) -%}
    {{ return(adapter.dispatch('round_half_up', 'account_engagement')(value)) }}
{%- endmacro -%}

{#- DuckDB and Spark -#}
{%- macro default__round_half_up(value) -%}
    round({{ value }}, 0)
{%- endmacro -%}

{%- macro postgres__round_half_up(value) -%}
    floor({{ value }} + 0.5)
{%- endmacro -%}
