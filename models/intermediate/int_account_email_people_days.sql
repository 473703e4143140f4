{{ account_days_model(delete_hooks=["{{ delete_changed_days('activity_date') }}"]) }}

{#- only the days of the emails landed since the last build, unless the address rules
    changed since -#}
{%- set increment_only = is_incremental() and not address_rules_changed() %}

with
{%- if increment_only %}

changed_days as (

    {{ changed_email_days() }}

),
{%- endif %}

email_interactions as (

    select * from {{ ref('int_email_account_interactions') }}
    {%- if increment_only %}
    -- the changed days, whole (the pre-hook deleted their rows here)
    where sent_date in (select changed_days.sent_date from changed_days)
    {%- endif %}

),

email_participants as (

    select * from {{ ref('int_email_participants') }}

),

people as (

    -- the org mailboxes' users and the account's own addresses on each email of the account
    select
        email_interactions.account_id,
        email_interactions.sent_date as activity_date,
        {{ person_side('email_participants') }} as side,
        {{ person_key('email_participants') }} as person,
        email_interactions.loaded_at
    from email_interactions
    inner join email_participants
        on email_interactions.internet_message_id = email_participants.internet_message_id
    where {{ counts_for_account('email_participants', 'email_interactions') }}

),

final as (

    -- each person once per account and day
    select
        account_id,
        activity_date,
        side,
        person,
        max(loaded_at) as loaded_at,
        '{{ address_rules_fingerprint() }}' as address_rules
    from people
    group by
        account_id,
        activity_date,
        side,
        person

)

select * from final
