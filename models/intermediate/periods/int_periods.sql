{%- set window_end = as_of_date() -%}
{%- set window_start = window_start_date() -%}

with

spine as (

    select window_spine.date_day from (
        {{ dbt.date_spine(
            'day',
            'cast(' ~ window_start ~ ' as date)',
            'cast(' ~ dbt.dateadd('day', 1, window_end) ~ ' as date)'
        ) }}
    ) as window_spine

),

window_days as (

    select cast(date_day as date) as day_date
    from spine

),

labelled as (

    select
        day_date,
        cast({{ dbt.date_trunc('month', 'day_date') }} as date) as month_start,
        {{ iso_week_start('day_date') }} as week_start
    from window_days

),

periods as (

    select
        'Year' as aggregation_level,
        min(day_date) as period_start,
        max(day_date) as period_end,
        false as is_whole
    from labelled

    union all

    -- months and ISO weeks cut to the window: the first may start on the window's first day,
    -- the last end on as_of_date; the others are whole
    select
        'Month' as aggregation_level,
        min(day_date) as period_start,
        max(day_date) as period_end,
        min(day_date) = month_start
        and max(day_date) = cast(
            {{ dbt.dateadd('day', -1, dbt.dateadd('month', 1, 'month_start')) }} as date
        ) as is_whole
    from labelled
    group by month_start

    union all

    select
        'Week' as aggregation_level,
        min(day_date) as period_start,
        max(day_date) as period_end,
        count(*) = 7 as is_whole
    from labelled
    group by week_start

),

final as (

    select
        aggregation_level,
        period_start,
        period_end,
        {{ dbt.datediff('period_start', 'period_end', 'day') }} + 1 as period_days,
        is_whole
    from periods

)

select * from final
