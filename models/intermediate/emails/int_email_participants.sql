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
            {'columns': ['address_rules']},
        ] if target.type == 'postgres' else [],
    )
}}

{#- Rebuilt by whole days (docs/incremental_models.md). A build rewrites every row of the
    days int_email_copies rewrote since this model's last build, and every day when the
    address rules changed since (a CRM snapshot, another selection of mailboxes, `remove
    graph`). Each rebuilt day also gets one day row (`is_day_row`, no email),
    which records the day's latest landing, so that a day whose emails are all gone is still
    replaced. -#}
with

address_accounts as (

    -- the written forms of the addresses that can count: an org mailbox's or an account's
    select * from {{ ref('int_address_accounts') }}
    where org_user_id is not null or account_id is not null

),

address_rules as (

    -- the current fingerprint, and whether it differs from the one this table was built under
    select
        current_rules.address_rules,
        {{ address_rules_changed('current_rules.address_rules') }} as have_changed
    from {{ ref('int_address_rules') }} as current_rules

),

rebuilt_days as (

    -- the days this build writes, with the latest landing of each (int_email_copies' day rows)
    select
        sent_date,
        max(loaded_at) as loaded_at
    from (
        select
            day_rows.sent_date,
            day_rows.loaded_at
        from {{ ref('int_email_copies') }} as day_rows
        cross join address_rules
        where
            day_rows.is_day_row
            {%- if is_incremental() %}
            and ({{ since_last_build('day_rows.loaded_at') }} or address_rules.have_changed)
            {%- endif %}
        {%- if is_incremental() %}

        union all

        -- under other address rules, the days only this table still holds
        select
            sent_date,
            cast(null as {{ dbt.type_timestamp() }}) as loaded_at
        from {{ this }}
        where (select address_rules.have_changed from address_rules)
        {%- endif %}
    ) as landed
    group by sent_date

),

rebuilt_from as (

    -- the earliest day this build writes: a bound the reads of int_email_recipients add to
    -- their `in rebuilt_days`, which an engine can check before unnesting the lists
    -- (PostgreSQL does not take an `in` into the view, and would unnest every copy)
    select min(sent_date) as sent_date
    from rebuilt_days

),

account_emails as (

    -- only an email with an address of an account (its author or a to/cc/bcc entry of any
    -- copy) can be to or from an account: the rest (the org's internal mail, newsletters)
    -- goes no further. Here and below, an incremental build reads the rebuilt days only; a
    -- full one reads every day
    select email_copies.internet_message_id
    from {{ ref('int_email_copies') }} as email_copies
    inner join address_accounts
        on email_copies.from_address = address_accounts.written_address
    where
        address_accounts.account_id is not null
        {%- if is_incremental() %}
        and email_copies.sent_date in (select rebuilt_days.sent_date from rebuilt_days)
        {%- endif %}

    union

    select email_recipients.internet_message_id
    from {{ ref('int_email_recipients') }} as email_recipients
    inner join address_accounts
        on email_recipients.written_address = address_accounts.written_address
    where
        address_accounts.account_id is not null
        {%- if is_incremental() %}
        and email_recipients.sent_date in (select rebuilt_days.sent_date from rebuilt_days)
        and email_recipients.sent_date >= (select rebuilt_from.sent_date from rebuilt_from)
        {%- endif %}

),

emails as (

    -- one row per email of an account: its copies agree on these (min() picks one if not)
    select
        email_copies.internet_message_id,
        min(email_copies.conversation_id) as conversation_id,
        min(email_copies.sent_at) as sent_at,
        min(email_copies.from_address) as from_address,
        max(email_copies.loaded_at) as loaded_at
    from {{ ref('int_email_copies') }} as email_copies
    inner join account_emails
        on email_copies.internet_message_id = account_emails.internet_message_id
    {%- if is_incremental() %}
    where email_copies.sent_date in (select rebuilt_days.sent_date from rebuilt_days)
    {%- endif %}
    group by email_copies.internet_message_id

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
    inner join account_emails
        on email_recipients.internet_message_id = account_emails.internet_message_id
    {%- if is_incremental() %}
    where
        email_recipients.sent_date in (select rebuilt_days.sent_date from rebuilt_days)
        and email_recipients.sent_date >= (select rebuilt_from.sent_date from rebuilt_from)
    {%- endif %}

),

participants as (

    -- one row per email and address who can count: two written forms of one address
    -- (`Ann@X.com`, `ann@x.com`) are one person
    select
        roles.internet_message_id,
        address_accounts.address,
        max(roles.is_sender) = 1 as is_sender,
        max(roles.is_recipient) = 1 as is_recipient,
        min(address_accounts.org_user_id) as org_user_id,
        min(address_accounts.account_id) as account_id
    from roles
    inner join address_accounts
        on roles.written_address = address_accounts.written_address
    group by
        roles.internet_message_id,
        address_accounts.address

),

final as (

    select
        cast(emails.sent_at as date) as sent_date,
        false as is_day_row,
        participants.internet_message_id,
        participants.address,
        participants.is_sender,
        participants.is_recipient,
        participants.org_user_id,
        participants.account_id,
        emails.conversation_id,
        emails.sent_at,
        emails.loaded_at,
        address_rules.address_rules
    from participants
    inner join emails
        on participants.internet_message_id = emails.internet_message_id
    cross join address_rules
    -- an email is placed by its time: one without cannot be
    where emails.sent_at is not null

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
        address_rules.address_rules
    from rebuilt_days
    cross join address_rules

)

select
    final.*,
    -- when this build started: the rows its data tests check (docs/incremental_models.md)
    {{ this_build_started_at() }} as built_at
from final
