{{
    config(
        materialized='incremental',
        incremental_strategy='insert_overwrite' if target.type in ('spark', 'databricks')
            else 'delete+insert',
        unique_key='activity_date',
        partition_by='activity_date' if target.type in ('spark', 'databricks')
            else none,
        on_schema_change='fail',
        indexes=[
            {'columns': ['activity_date']},
            {'columns': ['loaded_at']},
            {'columns': ['built_at']},
            {'columns': ['address_rules']},
        ] if target.type == 'postgres' else [],
    )
}}

{#- Rebuilt by whole days (docs/incremental_models.md): a build rewrites every row of the
    days int_email_account_interactions rewrote since this model's last build, and every day
    when the address rules changed since; each rebuilt day also gets one day row
    (`is_day_row`, no person). -#}
with

address_rules as (

    -- the current fingerprint, and whether it differs from the one this table was built under
    select
        current_rules.address_rules,
        {{ address_rules_changed('current_rules.address_rules') }} as have_changed
    from {{ ref('int_address_rules') }} as current_rules

),

rebuilt_days as (

    -- the days this build writes, with the latest landing of each (from the day rows)
    select
        day_rows.sent_date,
        max(day_rows.loaded_at) as loaded_at
    from {{ ref('int_email_account_interactions') }} as day_rows
    cross join address_rules
    where
        day_rows.is_day_row
        {%- if is_incremental() %}
        and ({{ since_last_build('day_rows.loaded_at') }} or address_rules.have_changed)
        {%- endif %}
    group by day_rows.sent_date

),

email_interactions as (

    select * from {{ ref('int_email_account_interactions') }}
    where
        not is_day_row
        {%- if is_incremental() %}
        and sent_date in (select rebuilt_days.sent_date from rebuilt_days)
        {%- endif %}

),

email_participants as (

    select * from {{ ref('int_email_participants') }}
    where
        not is_day_row
        {%- if is_incremental() %}
        and sent_date in (select rebuilt_days.sent_date from rebuilt_days)
        {%- endif %}

),

people as (

    -- the org mailboxes' users (a user's mail and UPN are one person) and the account's own
    -- addresses on each email of the account; an address of another account on it is not
    -- this account's
    select
        email_interactions.account_id,
        email_interactions.sent_date as activity_date,
        case
            when email_participants.org_user_id is not null then 'org'
            else 'account'
        end as side,
        coalesce(email_participants.org_user_id, email_participants.address) as person,
        email_interactions.loaded_at
    from email_interactions
    inner join email_participants
        on email_interactions.internet_message_id = email_participants.internet_message_id
    where
        email_participants.org_user_id is not null
        or email_participants.account_id = email_interactions.account_id

),

people_per_day as (

    -- each person once per account and day
    select
        activity_date,
        false as is_day_row,
        account_id,
        side,
        person,
        max(loaded_at) as loaded_at
    from people
    group by
        activity_date,
        account_id,
        side,
        person

),

final as (

    -- with the address rules they were counted under, attached after counting (as a
    -- grouping key, 32 more characters on every row would slow the count)
    select
        people_per_day.*,
        address_rules.address_rules
    from people_per_day
    cross join address_rules

    union all

    -- the day rows
    select
        rebuilt_days.sent_date as activity_date,
        true as is_day_row,
        null as account_id,
        null as side,
        null as person,
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
