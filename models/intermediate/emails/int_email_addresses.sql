{{
    config(
        materialized='incremental',
        incremental_strategy='insert_overwrite' if target.type == 'spark' else 'delete+insert',
        unique_key='sent_date',
        partition_by='sent_date',
        on_schema_change='fail',
    )
}}

{#- Rebuilt by whole days (docs/incremental_models.md): a build rewrites every row of the
    days int_email_copies rewrote since this model's last build (each row of its latest build
    is newer than every row here), those it emptied after `remove graph` included; each
    rebuilt day also gets one day row (no address). It holds no account, so a CRM change never
    rebuilds it. -#}
with

rebuilt_days as (

    -- the days this build writes, with the latest landing of each (int_email_copies' day rows;
    -- none on a day emptied by `remove graph`, whose day row has no landing: a filter on the
    -- landing would never see it)
    select
        sent_date,
        loaded_at
    from {{ ref('int_email_copies') }}
    where
        mailbox_id is null
        {%- if is_incremental() %}
        and {{ since_last_build('built_at') }}
        {%- endif %}

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

select
    final.*,
    -- when this build started: the rows its data tests check (docs/incremental_models.md)
    {{ this_build_started_at() }} as built_at
from final
