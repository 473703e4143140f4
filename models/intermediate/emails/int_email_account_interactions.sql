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

{#- Rebuilt by whole days (docs/incremental_models.md): the days int_email_participants rewrote
    since this model's last build (every day after a change of the address rules), each with
    one day row (`is_day_row`, no email) recording its latest landing. int_email_participants
    is read by name where it is used: DuckDB would keep a CTE read twice whole in memory. -#}
with

address_rules as (

    -- the current fingerprint, stored on every row
    select address_rules from {{ ref('int_address_rules') }}

),

rebuilt_days as (

    -- the days this build writes, with the latest landing of each (from the day rows)
    select
        sent_date,
        max(loaded_at) as loaded_at
    from {{ ref('int_email_participants') }}
    where
        is_day_row
        {%- if is_incremental() %}
        and {{ since_last_build('built_at') }}
        {%- endif %}
    group by sent_date

),

org_sides as (

    -- each org person once (a user's mail and UPN on one email are one person), then per email
    select
        internet_message_id,
        max(is_sender) = 1 as is_sent_by_org,
        max(is_recipient) = 1 as has_org_recipient,
        count(*) as org_people
    from (
        select
            internet_message_id,
            org_user_id,
            max(case when is_sender then 1 else 0 end) as is_sender,
            max(case when is_recipient then 1 else 0 end) as is_recipient
        from {{ ref('int_email_participants') }}
        where
            org_user_id is not null
            {%- if is_incremental() %}
            and sent_date in (select rebuilt_days.sent_date from rebuilt_days)
            {%- endif %}
        group by
            internet_message_id,
            org_user_id
    ) as org_people
    group by internet_message_id

),

account_sides as (

    -- one row per email and account (count(*): its addresses, one row each in participants)
    select
        internet_message_id,
        account_id,
        min(sent_date) as sent_date,
        min(sent_at) as sent_at,
        min(conversation_id) as conversation_id,
        max(loaded_at) as loaded_at,
        max(case when is_sender then 1 else 0 end) = 1 as is_sent_by_account,
        max(case when is_recipient then 1 else 0 end) = 1 as has_account_recipient,
        count(*) as account_addresses
    from {{ ref('int_email_participants') }}
    where
        account_id is not null
        {%- if is_incremental() %}
        and sent_date in (select rebuilt_days.sent_date from rebuilt_days)
        {%- endif %}
    group by
        internet_message_id,
        account_id

),

final as (

    -- every landed email to or from the account, whatever as_of_date (counted in its window)
    select
        account_sides.sent_date,
        false as is_day_row,
        account_sides.internet_message_id,
        account_sides.account_id,
        account_sides.conversation_id,
        account_sides.sent_at,
        -- to the account: an org author, a recipient of the account; from it: the reverse
        org_sides.is_sent_by_org and account_sides.has_account_recipient as is_to_account,
        account_sides.is_sent_by_account and org_sides.has_org_recipient as is_from_account,
        org_sides.org_people,
        account_sides.account_addresses,
        account_sides.loaded_at
    from account_sides
    -- an email without an org person has no org side: neither to nor from the account
    inner join org_sides
        on account_sides.internet_message_id = org_sides.internet_message_id
    where
        (org_sides.is_sent_by_org and account_sides.has_account_recipient)
        or (account_sides.is_sent_by_account and org_sides.has_org_recipient)

    union all

    -- the day rows
    select
        sent_date,
        true as is_day_row,
        null as internet_message_id,
        null as account_id,
        null as conversation_id,
        null as sent_at,
        null as is_to_account,
        null as is_from_account,
        null as org_people,
        null as account_addresses,
        loaded_at
    from rebuilt_days

)

select
    final.*,
    address_rules.address_rules,
    -- when this build started: the rows its data tests check (docs/incremental_models.md)
    {{ this_build_started_at() }} as built_at
from final
cross join address_rules
