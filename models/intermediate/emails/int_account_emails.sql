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

{#- Rebuilt by whole days (docs/incremental_models.md): the days int_email_copies rewrote since
    this model's last build, and every day when the address rules changed since, each with one
    day row (`is_day_row`, no email) recording its latest landing. -#}
with

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

    -- the earliest day this build writes: a bound beside the `in rebuilt_days` on the view
    -- int_email_recipients, which PostgreSQL checks before unnesting (an `in` it would not)
    select min(sent_date) as sent_date
    from rebuilt_days

),

account_emails as (

    -- an email with an address of an account as its author or a to/cc/bcc entry of any copy:
    -- no other can be to or from an account. Here and below, an incremental build reads the
    -- rebuilt days only; a full one reads every day
    select email_copies.internet_message_id
    from {{ ref('int_email_copies') }} as email_copies
    inner join {{ ref('int_address_accounts') }} as address_accounts
        on email_copies.from_address = address_accounts.written_address
    where
        address_accounts.account_id is not null
        {%- if is_incremental() %}
        and email_copies.sent_date in (select rebuilt_days.sent_date from rebuilt_days)
        {%- endif %}

    union

    select email_recipients.internet_message_id
    from {{ ref('int_email_recipients') }} as email_recipients
    inner join {{ ref('int_address_accounts') }} as address_accounts
        on email_recipients.written_address = address_accounts.written_address
    where
        address_accounts.account_id is not null
        {%- if is_incremental() %}
        and email_recipients.sent_date in (select rebuilt_days.sent_date from rebuilt_days)
        and email_recipients.sent_date >= (select rebuilt_from.sent_date from rebuilt_from)
        {%- endif %}

),

final as (

    -- one row per email: its copies agree on these (min() picks one if not); an email is
    -- placed by its time, so one without cannot be
    select
        cast(min(email_copies.sent_at) as date) as sent_date,
        false as is_day_row,
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
    having min(email_copies.sent_at) is not null

    union all

    -- the day rows
    select
        sent_date,
        true as is_day_row,
        null as internet_message_id,
        null as conversation_id,
        null as sent_at,
        null as from_address,
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
