{{ account_email_model(unique_key=['internet_message_id', 'written_address']) }}

{#- only the emails landed since the last build, unless the address rules changed since -#}
{%- set increment_only = is_incremental() and not address_rules_changed() -%}

with

{% if increment_only %}
changed_emails as (

    -- only the emails with a copy landed, changed or removed since the last build, rebuilt
    -- from all their copies (the pre-hook deleted their rows)
    {{ changed_email_ids() }}

),

account_emails as (

    -- those of them that are emails of an account (int_emails is built first)
    select emails.*
    from {{ ref('int_emails') }} as emails
    inner join changed_emails
        on emails.internet_message_id = changed_emails.internet_message_id

),

changed_copies as (

    -- all their copies, matched on a plain column (few: read once per list below)
    {{ changed_email_copies() }}

),

{% endif %}
{#- a full build reads int_emails by name where it is used: DuckDB would keep a CTE of its
    millions of rows read four times whole in memory #}
{%- set account_emails = 'account_emails' if increment_only else ref('int_emails') %}
{%- set copies = 'changed_copies' if increment_only else ref('int_email_copies') %}
senders as (

    -- the email's author, as int_emails picks it (already trimmed and lower case)
    select
        internet_message_id,
        from_address as written_address,
        1 as is_sender,
        0 as is_recipient,
        loaded_at
    from {{ account_emails }}
    where from_address is not null

),

recipients as (

    -- the to/cc/bcc entries of every copy of the emails of an account (only the sender's copy
    -- shows bcc), each list unnested on its own, the address as written: int_email_addresses
    -- reads each written form once, trimmed and lower case (here it would be done for every
    -- entry); an entry without an address is nobody
    select
        internet_message_id,
        written_address,
        0 as is_sender,
        1 as is_recipient,
        loaded_at
    from (
        {{ recipient_addresses(
            copies, ['internet_message_id', 'loaded_at'],
            join='inner join ' ~ account_emails ~ ' as account_emails on '
                ~ 'email_copies.internet_message_id = account_emails.internet_message_id',
        ) | indent(4) }}
    ) as entries
    where written_address is not null

),

roles as (

    -- the union over all copies: one row per email and written address
    select
        internet_message_id,
        written_address,
        max(is_sender) = 1 as is_sender,
        max(is_recipient) = 1 as is_recipient,
        max(loaded_at) as loaded_at,
        '{{ address_rules_fingerprint() }}' as address_rules
    from (
        select * from senders
        union all
        select * from recipients
    ) as email_roles
    group by
        internet_message_id,
        written_address

)

select * from roles
