{{
    config(
        materialized='incremental',
        incremental_strategy='insert_overwrite' if target.type in ('spark', 'databricks')
            else 'delete+insert',
        unique_key=['aggregation_level', 'period_start'],
        partition_by=['aggregation_level', 'period_start'] if target.type in ('spark', 'databricks')
            else none,
        on_schema_change='fail',
        indexes=[
            {'columns': ['aggregation_level', 'period_start']},
            {'columns': ['built_at']},
        ] if target.type == 'postgres' else [],
    )
}}

{#- Rebuilt by whole periods (docs/incremental_models.md): a build recounts every calendar
    month and ISO week holding a day int_account_email_people_days rewrote since this model's
    last build (each day of its latest build is newer than every row here; every day while this
    model holds no row, as after a first build before any mail landed), and gives each of them
    one period row (`is_day_row`, no account), so that a period whose people are all gone is
    still replaced. -#}

{#- the first day of the calendar month and of the ISO week holding a day -#}
{%- set calendar_start = {
    'Month': 'cast(' ~ dbt.date_trunc('month', 'activity_date') ~ ' as date)',
    'Week': iso_week_start('activity_date'),
} -%}

with

rebuilt_days as (

    select distinct activity_date
    from {{ ref('int_account_email_people_days') }}
    {%- if is_incremental() %}
    where {{ since_last_build('built_at') }}
    {%- endif %}

),

rebuilt_periods as (
    {%- for level, start in calendar_start.items() %}

    select distinct
        '{{ level }}' as aggregation_level,
        {{ start }} as period_start
    from rebuilt_days
    {%- if not loop.last %}

    union all
    {%- endif %}
    {%- endfor %}

),

people_per_period as (
    {%- for level, start in calendar_start.items() %}

    -- each person once per account, side and calendar period (the table is read by name in
    -- each level's branch, as in int_people_figures__by_account_period)
    select
        '{{ level }}' as aggregation_level,
        {{ start }} as period_start,
        false as is_day_row,
        account_id,
        side,
        count(distinct person) as people
    from {{ ref('int_account_email_people_days') }}
    where
        not is_day_row
        and {{ start }} in (
            select rebuilt_periods.period_start
            from rebuilt_periods
            where rebuilt_periods.aggregation_level = '{{ level }}'
        )
    group by
        {{ start }},
        account_id,
        side
    {%- if not loop.last %}

    union all
    {%- endif %}
    {%- endfor %}

),

final as (

    select * from people_per_period

    union all

    -- the period rows
    select
        aggregation_level,
        period_start,
        true as is_day_row,
        null as account_id,
        null as side,
        null as people
    from rebuilt_periods

)

select
    final.*,
    -- when this build started: the rows its data tests check (docs/incremental_models.md)
    {{ this_build_started_at() }} as built_at
from final
