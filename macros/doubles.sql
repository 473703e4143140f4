{#- Doubles that come out the same on every engine: the warehouse's 8-byte floating-point
    type (type_double, which dispatches on the adapter) and a mean computed exactly, then
    divided once (exact_mean) (macros/_macros.yml). -#}

{#- type_double() -> the warehouse's 8-byte floating-point type (dbt.type_float() is 4 bytes on
    DuckDB): the type of the averages of the marts (exact_mean). No arguments. -#}
{%- macro type_double() -%}
    {{ return(adapter.dispatch('type_double', 'account_engagement')()) }}
{%- endmacro -%}

{#- DuckDB and Spark -#}
{%- macro default__type_double() -%}
    double
{%- endmacro -%}

{%- macro postgres__type_double() -%}
    double precision
{%- endmacro -%}

{#- exact_mean(whole_numbers, divisor=1) -> the mean of a whole-number expression, divided by
    `divisor`, as a double; null when every value is null. Sum and count are exact integers
    and the division is the only rounding, so the result is the same bits whatever the order
    of the rows and on every engine (a floating-point avg() depends on the order of its terms
    in its last bits).
        whole_numbers: SQL expression of an integer column (seconds), aggregated.
        divisor: the whole number the mean is divided by: 60 for minutes, 3600 for hours;
            1 (the default) for none. -#}
{%- macro exact_mean(whole_numbers, divisor=1) -%}
    cast(sum({{ whole_numbers }}) as {{ type_double() }})
    / nullif(cast({{ divisor }} * count({{ whole_numbers }}) as {{ type_double() }}), 0)
{%- endmacro -%}
