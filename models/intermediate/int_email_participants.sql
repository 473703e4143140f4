{{ account_email_model(unique_key=['internet_message_id', 'address']) }}

{#- only the emails landed since the last build, unless the address rules changed since: the
    account or org user of an address already seen changes only with them -#}
{%- set increment_only = is_incremental() and not address_rules_changed() %}

with

email_addresses as (

    select * from {{ ref('int_email_addresses') }}

),

address_accounts as (

    select * from {{ ref('int_address_accounts') }}

),

email_roles as {{ computed_first() if increment_only }} (

    select * from {{ ref('int_email_roles') }}
    {%- if increment_only %}
    -- the roles of the changed emails (rebuilt first): the pre-hook deleted their rows here;
    -- computed first (a few thousand rows), or the engine would join all roles first
    where internet_message_id in ({{ changed_email_ids() }})
    {%- endif %}

),

address_forms as (

    -- each written form of an address that can count (an org mailbox or an address of an
    -- account), with who holds it: tens of thousands of rows
    select
        email_addresses.written_address,
        address_accounts.address,
        address_accounts.org_user_id,
        address_accounts.account_id
    from email_addresses
    inner join address_accounts
        on email_addresses.address = address_accounts.address
    where
        address_accounts.org_user_id is not null
        or address_accounts.account_id is not null

),

people as (

    -- the org mailboxes and the addresses of an account on the emails (int_email_roles holds
    -- only emails with an address of an account: no other email can be to or from one)
    select
        email_roles.internet_message_id,
        address_forms.address,
        email_roles.is_sender,
        email_roles.is_recipient,
        email_roles.loaded_at,
        address_forms.org_user_id,
        address_forms.account_id
    from email_roles
    inner join address_forms
        on email_roles.written_address = address_forms.written_address

),

final as (

    -- one row per email and address: two written forms of one address (`Ann@X.com`,
    -- `ann@x.com`) are one person
    select
        internet_message_id,
        address,
        max(case when is_sender then 1 else 0 end) = 1 as is_sender,
        max(case when is_recipient then 1 else 0 end) = 1 as is_recipient,
        min(org_user_id) as org_user_id,
        min(account_id) as account_id,
        max(loaded_at) as loaded_at,
        '{{ address_rules_fingerprint() }}' as address_rules
    from people
    group by
        internet_message_id,
        address

)

select * from final
