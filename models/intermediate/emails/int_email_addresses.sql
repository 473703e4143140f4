{{
    config(
        materialized='incremental',
        incremental_strategy='insert_overwrite' if target.type in ('spark', 'databricks')
            else 'delete+insert',
        unique_key='sent_month',
        partition_by='sent_month' if target.type in ('spark', 'databricks')
            else none,
        on_schema_change='fail',
        indexes=[
            {'columns': ['sent_month']},
            {'columns': ['built_at']},
        ] if target.type == 'postgres' else [],
    )
}}

{#- Rebuilt by whole months (docs/incremental_models.md): a build rewrites every row of the
    calendar months holding a day int_email_copies rewrote since this model's last build (each
    row of its latest build is newer than every row here), those it emptied after `remove
    graph` included; each rebuilt month also gets one month row (`is_day_row`, no address). A
    month, not a day: the same form on the 30 days of a month is one row, not 30 (2,500
    mailboxes: 1 M rows, not 7 M). It holds no account, so a CRM change never rebuilds it. -#}

{#- the first day of the (UTC) calendar month holding an email's day -#}
{%- set sent_month = 'cast(' ~ dbt.date_trunc('month', 'sent_date') ~ ' as date)' -%}

with

rebuilt_months as (

    -- the months holding a day int_email_copies rewrote since this model's last build (its day
    -- rows; one with no landing on a day emptied by `remove graph`: a filter on the landing
    -- would never see it)
    select distinct {{ sent_month }} as sent_month
    from {{ ref('int_email_copies') }}
    where
        is_day_row
        {%- if is_incremental() %}
        and {{ since_last_build('built_at') }}
        {%- endif %}

),

rebuilt_days as (

    -- every day of those months (int_email_copies' day rows), with its latest landing: the
    -- filters below name the days, which the engine finds by the column's bounds (an
    -- incremental build; a full one reads every day)
    select
        sent_date,
        loaded_at
    from {{ ref('int_email_copies') }}
    where
        is_day_row
        and {{ sent_month }} in (select rebuilt_months.sent_month from rebuilt_months)

),

rebuilt_from as (

    -- the earliest day this build writes: a bound the reads of int_email_recipients add to
    -- their `in rebuilt_days`, which an engine can check before unnesting the lists
    -- (PostgreSQL does not take an `in` into the view, and would unnest every copy)
    select min(sent_date) as sent_date
    from rebuilt_days

),

written_forms as (

    -- the email's author (already trimmed and lower case in staging) and every to/cc/bcc
    -- entry as written
    select
        sent_date,
        from_address as written_address,
        loaded_at
    from {{ ref('int_email_copies') }}
    where
        from_address is not null
        {%- if is_incremental() %}
        and sent_date in (select rebuilt_days.sent_date from rebuilt_days)
        {%- endif %}

    union all

    select
        sent_date,
        written_address,
        loaded_at
    from {{ ref('int_email_recipients') }}
    {%- if is_incremental() %}
    where
        sent_date in (select rebuilt_days.sent_date from rebuilt_days)
        and sent_date >= (select rebuilt_from.sent_date from rebuilt_from)
    {%- endif %}

),

final as (

    -- each form once a month: a hundred thousand forms next to two hundred million entries
    select
        {{ sent_month }} as sent_month,
        false as is_day_row,
        written_address,
        max(loaded_at) as loaded_at
    from written_forms
    group by
        {{ sent_month }},
        written_address

    union all

    -- the month rows, with the month's latest landing (a removed copy included; null on a
    -- month `remove graph` emptied)
    select
        {{ sent_month }} as sent_month,
        true as is_day_row,
        null as written_address,
        max(loaded_at) as loaded_at
    from rebuilt_days
    group by {{ sent_month }}

)

select
    final.*,
    -- when this build started: the rows its data tests check (docs/incremental_models.md)
    {{ this_build_started_at() }} as built_at
from final
