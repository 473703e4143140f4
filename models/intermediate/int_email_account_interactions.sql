{{ account_email_model(unique_key=['internet_message_id', 'account_id']) }}

{#- only the emails landed since the last build, unless the address rules changed since -#}
{%- set increment_only = is_incremental() and not address_rules_changed() %}
{#- int_email_participants is read by name where it is used: DuckDB would keep an import CTE
    read twice whole in memory #}
{%- set participants = 'changed_participants' if increment_only
    else ref('int_email_participants') %}

with

emails as (

    select * from {{ ref('int_emails') }}

),

{% if increment_only %}
changed_participants as {{ computed_first() }} (

    -- the participants of the changed emails (rebuilt first): the pre-hook deleted their rows
    select * from {{ ref('int_email_participants') }}
    where internet_message_id in ({{ changed_email_ids() }})

),

{% endif %}
org_sides as (

    -- each org person once (a user's mail and UPN on one email are one person), then per email
    -- (two plain aggregations: a count(distinct) over every participant was the slow part)
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
        from {{ participants }}
        where org_user_id is not null
        group by
            internet_message_id,
            org_user_id
    ) as org_people
    group by internet_message_id

),

account_sides as (

    -- int_email_participants has one row per email and address: count(*) counts addresses
    select
        internet_message_id,
        account_id,
        max(case when is_sender then 1 else 0 end) = 1 as is_sent_by_account,
        max(case when is_recipient then 1 else 0 end) = 1 as has_account_recipient,
        count(*) as account_addresses
    from {{ participants }}
    where account_id is not null
    group by
        internet_message_id,
        account_id

),

directed as (

    select
        account_sides.internet_message_id,
        account_sides.account_id,
        -- to the account: sent by an org address, with a to/cc/bcc recipient of the account (an
        -- email without an org person has no org side: neither to nor from the account)
        org_sides.is_sent_by_org and account_sides.has_account_recipient as is_to_account,
        -- from the account: sent by an address of the account, with an org recipient
        account_sides.is_sent_by_account and org_sides.has_org_recipient as is_from_account,
        org_sides.org_people,
        account_sides.account_addresses
    from account_sides
    inner join org_sides
        on account_sides.internet_message_id = org_sides.internet_message_id

),

final as (

    select
        directed.internet_message_id,
        directed.account_id,
        emails.conversation_id,
        emails.sent_at,
        emails.sent_date,
        directed.is_to_account,
        directed.is_from_account,
        directed.org_people,
        directed.account_addresses,
        emails.loaded_at,
        '{{ address_rules_fingerprint() }}' as address_rules
    from directed
    inner join emails
        on directed.internet_message_id = emails.internet_message_id
    -- every landed email, whatever as_of_date (the models that count them place them in the
    -- window): an incremental table cannot follow a moving as_of_date
    where directed.is_to_account or directed.is_from_account

)

select * from final
