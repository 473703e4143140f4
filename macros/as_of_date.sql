{#- as_of_date() -> cast('2024-06-30' as date): the var `as_of_date`, else the UTC day the
    invocation started, so every model of a run agrees (_macros.yml) -#}
{%- macro as_of_date() -%}
    {%- set configured = var('as_of_date', none) -%}
    {%- if configured is none or (configured | string | trim) in ('', 'none', 'None', 'null') -%}
        {%- set day = run_started_at.astimezone(modules.pytz.utc).strftime('%Y-%m-%d') -%}
    {%- else -%}
        {%- set day = configured | string | trim -%}
        {#- a real day (not 2024-02-30), checked without strptime, whose error names no fix -#}
        {%- set year, month, day_of_month = (day ~ '--').split('-')[:3] | map('int', 0) | list -%}
        {%- set leap = (year % 4 == 0 and year % 100 != 0) or year % 400 == 0 -%}
        {%- set month_days = [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31] -%}
        {%- if not (modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', day) and year >= 1
                    and 1 <= month <= 12 and 1 <= day_of_month <= month_days[month - 1]) -%}
            {{ exceptions.raise_compiler_error(
                "var as_of_date must be a date written YYYY-MM-DD (or null for today), got '"
                ~ day ~ "': write e.g. dbt build --vars '{as_of_date: \"2024-06-30\"}'"
            ) }}
        {%- endif -%}
    {%- endif -%}
    cast('{{ day }}' as date)
{%- endmacro -%}

{#- window_start_date() -> the first day of the window of `window_days` days ending on
    as_of_date(), a date literal: a constant, so an engine can prune a scan with it -#}
{%- macro window_start_date() -%}
    {%- set as_of = modules.re.search("'([0-9-]+)'", as_of_date()).group(1) -%}
    {%- set days = var('window_days') | int -%}
    {%- if days < 1 -%}
        {{ exceptions.raise_compiler_error(
            "var window_days must be a whole number of days >= 1, got '"
            ~ var('window_days') ~ "'"
        ) }}
    {%- endif -%}
    {%- set first_day = modules.datetime.datetime.strptime(as_of, '%Y-%m-%d')
        - modules.datetime.timedelta(days=days - 1) -%}
    cast('{{ first_day.strftime('%Y-%m-%d') }}' as date)
{%- endmacro -%}

{#- period_start(aggregation_level, date_expr) -> the first day of the Year, Month or Week
    period holding a day of the window, as int_periods cuts them (_macros.yml) -#}
{%- macro period_start(aggregation_level, date_expr) -%}
    {%- if aggregation_level == 'Year' -%}
    {{ window_start_date() }}
    {%- elif aggregation_level == 'Month' -%}
    greatest(cast({{ dbt.date_trunc('month', date_expr) }} as date), {{ window_start_date() }})
    {%- elif aggregation_level == 'Week' -%}
    greatest({{ iso_week_start(date_expr) }}, {{ window_start_date() }})
    {%- else -%}
    {{ exceptions.raise_compiler_error(
        "period_start: aggregation_level must be Year, Month or Week, got '"
        ~ aggregation_level ~ "'"
    ) }}
    {%- endif -%}
{%- endmacro -%}
