{{
    config(
        materialized='incremental',
        incremental_strategy='insert_overwrite' if target.type in ('spark', 'databricks')
            else 'delete+insert',
        unique_key='sent_date',
        partition_by='sent_date' if target.type in ('spark', 'databricks')
            else none,
        on_schema_change='fail',
        indexes=[
            {'columns': ['sent_date']},
            {'columns': ['loaded_at']},
            {'columns': ['built_at']},
        ] if target.type == 'postgres' else [],
    )
}}

{#- Rebuilt by whole days (docs/incremental_models.md): a build rewrites every row of the
    days with a mail copy landed, changed or removed since the last one, and gives each of
    them one day row (`is_day_row`, no copy) that records the day's latest landing. The
    loader stamps every new, changed or removed copy with a new `_loaded_at`, and Graph never
    changes a sent message's sentDateTime: a rebuilt day is the copies that landed on it and
    the copies this table held on it that did not land again. The one model that reads the
    raw messages: the models after it find a day's copies here by a plain column. -#}
with

rebuilt_days as (

    -- the days this build writes, with the latest landing of each (a removed copy included)
    select
        sent_date,
        max(loaded_at) as loaded_at
    from (
        -- the copies landed, changed or flagged removed since the last build (all in a full one)
        select
            sent_date,
            loaded_at
        from {{ ref('stg_graph__messages') }}
        where
            sent_date is not null
            {%- if is_incremental() %}
            and {{ since_last_build('loaded_at') }}
            {%- endif %}
        {%- if is_incremental() %}

        union all

        -- after `remove graph` (raw rows go only then; a new load may have followed it), every
        -- day this table holds, emptied: no landed copy is older than this table's last build
        select
            sent_date,
            cast(null as {{ dbt.type_timestamp() }}) as loaded_at
        from {{ this }}
        where
            is_day_row
            and not exists (
                select 1 as copy_kept_from_before
                from {{ ref('stg_graph__messages') }} as landed
                where not {{ since_last_build('landed.loaded_at') }}
            )
        {%- endif %}
    ) as landings
    group by sent_date

),

mail_folders as (

    select * from {{ ref('stg_graph__mail_folders') }}

),

landed_copies as (

    -- the landed copies that count: neither removed nor drafts (`isDraft`, or a copy in the
    -- Drafts folder: flagged `drafts` by the loader, its subfolders too, or named Drafts)
    select
        landed.sent_date,
        false as is_day_row,
        landed.mailbox_id,
        landed.message_id,
        -- a message without an internetMessageId cannot be matched across mailboxes: each
        -- copy then stands for itself
        coalesce(
            landed.internet_message_id,
            {{ dbt.concat(["'graph:'", "landed.mailbox_id", "':'", "landed.message_id"]) }}
        ) as internet_message_id,
        landed.conversation_id,
        landed.sent_at,
        coalesce(landed.from_address, landed.sender_address) as from_address,
        landed.to_addresses,
        landed.cc_addresses,
        landed.bcc_addresses,
        landed.loaded_at
    from {{ ref('stg_graph__messages') }} as landed
    left join mail_folders
        on
            landed.mailbox_id = mail_folders.mailbox_id
            and landed.folder_id = mail_folders.folder_id
    where
        landed.sent_date is not null
        {%- if is_incremental() %}
        and {{ since_last_build('landed.loaded_at') }}
        {%- endif %}
        and not landed.is_removed
        and not landed.is_draft
        and not coalesce(
            mail_folders.excluded_reason = 'drafts' or lower(mail_folders.display_name) = 'drafts',
            false
        )

),

final as (

    select * from landed_copies
    {%- if is_incremental() %}

    union all

    -- the copies this table holds on the rebuilt days that did not land again (none after
    -- `remove graph`, whatever landed since)
    select
        held.sent_date,
        held.is_day_row,
        held.mailbox_id,
        held.message_id,
        held.internet_message_id,
        held.conversation_id,
        held.sent_at,
        held.from_address,
        held.to_addresses,
        held.cc_addresses,
        held.bcc_addresses,
        held.loaded_at
    from {{ this }} as held
    where
        not held.is_day_row
        and held.sent_date in (select rebuilt_days.sent_date from rebuilt_days)
        and not exists (
            select 1 as landed_again
            from {{ ref('stg_graph__messages') }} as landed
            where
                landed.mailbox_id = held.mailbox_id
                and landed.message_id = held.message_id
                and {{ since_last_build('landed.loaded_at') }}
        )
        and exists (
            select 1 as copy_kept_from_before
            from {{ ref('stg_graph__messages') }} as landed
            where not {{ since_last_build('landed.loaded_at') }}
        )
    {%- endif %}

    union all

    -- the day rows
    select
        sent_date,
        true as is_day_row,
        null as mailbox_id,
        null as message_id,
        null as internet_message_id,
        null as conversation_id,
        null as sent_at,
        null as from_address,
        null as to_addresses,
        null as cc_addresses,
        null as bcc_addresses,
        loaded_at
    from rebuilt_days

)

select
    final.*,
    -- when this build started: the rows its data tests check (docs/incremental_models.md)
    {{ this_build_started_at() }} as built_at
from final
