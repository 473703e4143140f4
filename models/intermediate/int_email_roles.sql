{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['internet_message_id', 'written_address'],
        on_schema_change='fail',
        pre_hook=[
            "{{ empty_when_upstream_is_empty(ref('stg_graph__messages')) }}",
            "{{ delete_changed_emails() }}",
        ],
    )
}}

with

emails as (

    select * from {{ ref('int_emails') }}

),

{% if is_incremental() %}
changed_emails as (

    -- only the emails with a copy landed, changed or removed since the last build, rebuilt
    -- from all their copies (the pre-hook deleted their rows)
    {{ changed_email_ids() }}

),

copies as (

    -- their copies, read once: few, so DuckDB keeping them in memory for the three lists below
    -- is cheap (a full build reads the copies by name instead, once per list)
    select email_copies.*
    from {{ ref('int_email_copies') }} as email_copies
    inner join changed_emails
        on email_copies.internet_message_id = changed_emails.internet_message_id

),

{% endif %}
senders as (

    -- the email's author, as int_emails picks it (built first, from the same copies; already
    -- trimmed and lower case)
    select
        emails.internet_message_id,
        emails.from_address as written_address,
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

    -- the to/cc/bcc entries of every copy (only the sender's copy shows bcc), each list
    -- unnested on its own, the address as written: int_email_addresses reads each written
    -- form once, trimmed and lower case (here it would be done for every entry: 137 M
    -- entries, 64 s instead of 26 s); an entry without an address is nobody
    select
        internet_message_id,
        written_address,
        0 as is_sender,
        1 as is_recipient,
        loaded_at
    from (
        select
            internet_message_id,
            {{ struct_field('recipient', 'emailAddress.address') }} as written_address,
            loaded_at
        from (
            {#- a full build reads int_email_copies by name once per list, not through a
                CTE: DuckDB would keep a CTE read three times whole in memory #}
            {%- for recipient_list in ['to_recipients', 'cc_recipients', 'bcc_recipients'] %}
            select
                internet_message_id,
                {{ explode_list(recipient_list) }} as recipient,
                loaded_at
            from {{ 'copies' if is_incremental() else ref('int_email_copies') }}
            {%- if not loop.last %}
            union all
            {%- endif %}
            {%- endfor %}
        ) as listed
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
        max(loaded_at) as loaded_at
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
