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

{#- Rebuilt by whole days (docs/incremental_models.md): the days with a copy landed, changed
    or removed since the last build, each with one day row (`is_day_row`) recording its latest
    landing. The one model that reads the raw messages: the models after it find a day's
    copies here by a plain column. -#}
with

{%- if is_incremental() %}

graph_was_removed as (

    -- true after `remove graph` (raw rows go only then; a load may have followed it): no
    -- landed copy is as old as this table's last build (any one such copy tells: no order)
    select count(*) = 0 as graph_was_removed
    from (
        select landed.message_id
        from {{ ref('stg_graph__messages') }} as landed
        where not {{ since_last_build('landed.loaded_at') }}
        limit 1  -- noqa: AM09
    ) as copy_landed_before

),
{%- endif %}

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

        -- after `remove graph`, every day this table holds, emptied
        select
            sent_date,
            cast(null as {{ dbt.type_timestamp() }}) as loaded_at
        from {{ this }}
        where is_day_row and (select graph_was_removed.graph_was_removed from graph_was_removed)
        {%- endif %}
    ) as landings
    group by sent_date

),

final as (

    -- the copies that count landed since the last build (every one in a full build)
    select
        sent_date,
        false as is_day_row,
        mailbox_id,
        message_id,
        internet_message_id,
        conversation_id,
        sent_at,
        from_address,
        to_addresses,
        cc_addresses,
        bcc_addresses,
        loaded_at
    from {{ ref('int_email_landed_copies') }}
    {%- if is_incremental() %}
    where {{ since_last_build('loaded_at') }}

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
        and not (select graph_was_removed.graph_was_removed from graph_was_removed)
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
