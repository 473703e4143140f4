{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['internet_message_id', 'address'],
        on_schema_change='fail',
        pre_hook=[
            "{{ empty_when_upstream_is_empty(ref('stg_graph__messages')) }}",
            "{{ delete_changed_emails() }}",
        ],
    )
}}

with

email_copies as (

    select * from {{ ref('int_email_copies') }}

),

emails as (

    select * from {{ ref('int_emails') }}

),

{% if is_incremental() %}
changed_emails as (

    -- only the emails with a copy landed, changed or removed since the last build, rebuilt
    -- from all their copies (the pre-hook deleted their rows)
    {{ changed_email_ids() }}

),

{% endif %}
copies as (

    select email_copies.*
    from email_copies
    {% if is_incremental() %}
    inner join changed_emails
        on email_copies.internet_message_id = changed_emails.internet_message_id
    {% endif %}

),

senders as (

    -- the email's author, as int_emails picks it (built first, from the same copies); each
    -- CTE reads the copies once: DuckDB would otherwise keep them whole in memory
    select
        emails.internet_message_id,
        emails.from_address as address,
        1 as is_sender,
        0 as is_recipient,
        emails.loaded_at
    from emails
    {% if is_incremental() %}
    inner join changed_emails
        on emails.internet_message_id = changed_emails.internet_message_id
    {% endif %}
    where emails.from_address is not null

),

recipients as (

    -- the to/cc/bcc entries of every copy (only the sender's copy shows bcc), addresses
    -- trimmed and lower case as everywhere; an entry without one is nobody
    select
        internet_message_id,
        address,
        0 as is_sender,
        1 as is_recipient,
        loaded_at
    from (
        select
            internet_message_id,
            nullif(lower(trim(
                {{ struct_field('recipient', 'emailAddress.address') }}
            )), '') as address,
            loaded_at
        from (
            select
                internet_message_id,
                {{ explode_list('recipients') }} as recipient,
                loaded_at
            from copies
        ) as listed
    ) as entries
    where address is not null

),

roles as (

    -- the union over all copies: one row per email and address
    select
        internet_message_id,
        address,
        max(is_sender) = 1 as is_sender,
        max(is_recipient) = 1 as is_recipient,
        max(loaded_at) as loaded_at
    from (
        select * from senders
        union all
        select * from recipients
    ) as email_roles
    group by
        internet_message_id,
        address

)

select * from roles
