{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='sent_date',
        on_schema_change='fail',
    )
}}

{#- Rebuilt by whole days (docs/incremental_models.md): a build rewrites every row of the
    days with a mail copy landed, changed or removed since the last one; each rebuilt day also
    gets one day row (no address), which records the day's latest landing. It holds no
    account, so a CRM change never rebuilds it. -#}
with

rebuilt_days as (

    -- the days this build writes, with the latest landing of each (a removed copy included)
    select
        sent_date,
        max(loaded_at) as loaded_at
    from {{ ref('stg_graph__messages') }}
    where
        sent_date is not null
        {%- if is_incremental() %}
        and sent_date in ({{ days_landed_since_last_build(ref('stg_graph__messages')) }})
        {%- endif %}
    group by sent_date

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
        and sent_date in (select rebuilt_days.sent_date from rebuilt_days)

    union all

    select
        sent_date,
        written_address,
        loaded_at
    from {{ ref('int_email_recipients') }}
    where sent_date in (select rebuilt_days.sent_date from rebuilt_days)

),

final as (

    -- each form once a day: tens of thousands of forms next to a hundred million entries
    select
        sent_date,
        written_address,
        max(loaded_at) as loaded_at
    from written_forms
    group by
        sent_date,
        written_address

    union all

    -- the day rows
    select
        sent_date,
        null as written_address,
        loaded_at
    from rebuilt_days

)

select * from final
