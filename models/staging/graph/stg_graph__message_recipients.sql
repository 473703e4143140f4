{%- set recipient_lists = [
    ('to', '"toRecipients"'),
    ('cc', '"ccRecipients"'),
    ('bcc', '"bccRecipients"'),
] -%}

with

source as (

    select * from {{ source('graph', 'messages') }}
    where not coalesce(_removed, false)

),

{% for recipient_type, list_column in recipient_lists %}
{{ recipient_type }}_recipients as (

    select
        source._mailbox_id as mailbox_id,
        source.id as message_id,
        source."internetMessageId" as internet_message_id,
        '{{ recipient_type }}' as recipient_type,
        recipients.recipient_position,
        {{ struct_field('recipients.recipient', 'emailAddress.address') }} as recipient_address,
        {{ struct_field('recipients.recipient', 'emailAddress.name') }} as recipient_name
    from source
    {{ unnest_struct_list(
        'source.' ~ list_column, 'recipients', 'recipient', 'recipient_position'
    ) }}

),

{% endfor %}
unioned as (

    {% for recipient_type, _ in recipient_lists %}
    select * from {{ recipient_type }}_recipients
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

renamed as (

    select

        ---------- ids
        mailbox_id,
        message_id,
        nullif(trim(internet_message_id), '') as internet_message_id,

        ---------- recipient
        recipient_type,
        recipient_position,
        nullif(lower(trim(recipient_address)), '') as recipient_address,
        recipient_name

    from unioned

),

addressed as (

    -- a recipient entry without an address cannot be attributed to anyone
    select * from renamed
    where recipient_address is not null

)

select * from addressed
