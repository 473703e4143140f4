{{ account_email_model(unique_key='internet_message_id') }}

{#- only the emails landed since the last build, unless the address rules changed since -#}
{%- set increment_only = is_incremental() and not address_rules_changed() -%}
{#- int_email_copies is read by name once per address list in a full build: DuckDB would keep
    a CTE read five times whole in memory -#}
{%- set copies = 'changed_copies' if increment_only else ref('int_email_copies') -%}

with

email_addresses as (

    select * from {{ ref('int_email_addresses') }}

),

address_accounts as (

    select * from {{ ref('int_address_accounts') }}

),

{% if increment_only %}
changed_copies as (

    -- all the copies of the emails with a copy landed, changed or removed since the last
    -- build: each is recomputed from all its copies (the pre-hook deleted their rows: an email
    -- whose copies are all gone, or that is no longer of an account, stays deleted); few,
    -- read several times below
    {{ changed_email_copies() }}

),

{% endif %}
account_forms as (

    -- the written forms of the addresses of an account (tens of thousands)
    select email_addresses.written_address
    from email_addresses
    inner join address_accounts
        on email_addresses.address = address_accounts.address
    where address_accounts.account_id is not null

),

account_emails as (

    -- only an email with an address of an account (its author or a to/cc/bcc entry of any
    -- copy) can be to or from an account: the rest (the org's internal mail and the
    -- newsletters, most of every mailbox) goes no further
    select distinct entries.internet_message_id
    from (
        select
            internet_message_id,
            from_address as written_address
        from {{ copies }}

        union all
        {{ recipient_addresses(copies, ['internet_message_id']) | indent(4) }}
    ) as entries
    inner join account_forms
        on entries.written_address = account_forms.written_address

),

emails as (

    -- the copies of one email agree on these; min() picks one deterministically if not
    select
        email_copies.internet_message_id,
        min(email_copies.conversation_id) as conversation_id,
        min(email_copies.sent_at) as sent_at,
        min(email_copies.from_address) as from_address,
        count(*) as copies,
        max(email_copies.loaded_at) as loaded_at
    from {{ copies }} as email_copies
    inner join account_emails
        on email_copies.internet_message_id = account_emails.internet_message_id
    group by email_copies.internet_message_id

),

final as (

    select
        internet_message_id,
        conversation_id,
        sent_at,
        cast(sent_at as date) as sent_date,
        from_address,
        copies,
        loaded_at,
        '{{ address_rules_fingerprint() }}' as address_rules
    from emails
    -- an email is placed by its time: one without cannot be
    where sent_at is not null

)

select * from final
