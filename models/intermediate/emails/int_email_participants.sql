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
            {'columns': ['built_at']},
        ] if target.type == 'postgres' else [],
    )
}}

{#- Rebuilt by whole days (docs/incremental_models.md): the days int_account_emails rewrote
    since this model's last build (every day after a change of the address rules), each with
    one day row (`is_day_row`, no email) recording its latest landing. -#}
with

rebuilt_days as (

    -- the days this build writes, with the latest landing of each, and the address rules
    -- int_account_emails built them under (from its day rows)
    select
        sent_date,
        max(loaded_at) as loaded_at,
        max(address_rules) as address_rules
    from {{ ref('int_account_emails') }}
    where
        is_day_row
        {%- if is_incremental() %}
        and {{ since_last_build('built_at') }}
        {%- endif %}
    group by sent_date

),

rebuilt_from as (

    -- the earliest day this build writes: a bound for PostgreSQL (as in int_account_emails)
    select min(sent_date) as sent_date
    from rebuilt_days

),

emails as (

    -- the emails of accounts (an incremental build reads the rebuilt days only)
    select * from {{ ref('int_account_emails') }}
    where
        not is_day_row
        {%- if is_incremental() %}
        and sent_date in (select rebuilt_days.sent_date from rebuilt_days)
        {%- endif %}

),

roles as (

    -- the email's author, and the to/cc/bcc entries of all its copies
    select
        internet_message_id,
        from_address as written_address,
        1 as is_sender,
        0 as is_recipient
    from emails

    union all

    select
        email_recipients.internet_message_id,
        email_recipients.written_address,
        0 as is_sender,
        1 as is_recipient
    from {{ ref('int_email_recipients') }} as email_recipients
    inner join emails
        on email_recipients.internet_message_id = emails.internet_message_id
    {%- if is_incremental() %}
    where
        email_recipients.sent_date in (select rebuilt_days.sent_date from rebuilt_days)
        and email_recipients.sent_date >= (select rebuilt_from.sent_date from rebuilt_from)
    {%- endif %}

),

participants as (

    -- one row per email and address who can count (an org mailbox's or an account's): two
    -- written forms of one address (`Ann@X.com`, `ann@x.com`) are one person
    select
        roles.internet_message_id,
        address_accounts.address,
        max(roles.is_sender) = 1 as is_sender,
        max(roles.is_recipient) = 1 as is_recipient,
        min(address_accounts.org_user_id) as org_user_id,
        min(address_accounts.account_id) as account_id
    from roles
    inner join {{ ref('int_address_accounts') }} as address_accounts
        on roles.written_address = address_accounts.written_address
    where address_accounts.org_user_id is not null or address_accounts.account_id is not null
    group by
        roles.internet_message_id,
        address_accounts.address

),

final as (

    select
        emails.sent_date,
        false as is_day_row,
        participants.*,
        emails.conversation_id,
        emails.sent_at,
        emails.loaded_at,
        emails.address_rules
    from participants
    inner join emails
        on participants.internet_message_id = emails.internet_message_id

    union all

    -- the day rows
    select
        rebuilt_days.sent_date,
        true as is_day_row,
        null as internet_message_id,
        null as address,
        null as is_sender,
        null as is_recipient,
        null as org_user_id,
        null as account_id,
        null as conversation_id,
        null as sent_at,
        rebuilt_days.loaded_at,
        rebuilt_days.address_rules
    from rebuilt_days

)

select
    final.*,
    -- when this build started: the rows its data tests check (docs/incremental_models.md)
    {{ this_build_started_at() }} as built_at
from final
