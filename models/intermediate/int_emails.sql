{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='internet_message_id',
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

{% if is_incremental() %}
changed_emails as (

    -- the emails with a copy landed, changed or removed since the last build: each is
    -- recomputed from all its copies (the pre-hook deleted their rows: an email whose copies
    -- are all gone stays deleted)
    {{ changed_email_ids() }}

),

{% endif %}
emails as (

    -- the copies of one email agree on these; min() picks one deterministically if not
    select
        email_copies.internet_message_id,
        min(email_copies.conversation_id) as conversation_id,
        min(email_copies.sent_at) as sent_at,
        min(email_copies.from_address) as from_address,
        count(*) as copies,
        max(email_copies.loaded_at) as loaded_at
    from email_copies
    {% if is_incremental() %}
    inner join changed_emails
        on email_copies.internet_message_id = changed_emails.internet_message_id
    {% endif %}
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
        loaded_at
    from emails
    -- an email is placed by its time: one without cannot be
    where sent_at is not null

)

select * from final
