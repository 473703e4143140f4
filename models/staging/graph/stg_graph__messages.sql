{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['mailbox_id', 'message_id'],
        on_schema_change='fail',
        pre_hook="{{ empty_when_upstream_is_empty(source('graph', 'messages')) }}",
    )
}}

with

source as (

    -- incremental: only the copies the loader landed (or flagged removed) since the last
    -- build; a re-landed copy replaces its row (delete+insert on mailbox and message id)
    select * from {{ source('graph', 'messages') }}
    where {{ loaded_since_last_build('_loaded_at') }}

),

renamed as (

    select

        ---------- ids
        _mailbox_id as mailbox_id,
        id as message_id,
        nullif(trim("internetMessageId"), '') as internet_message_id,
        "conversationId" as conversation_id,
        coalesce("parentFolderId", _folder_id) as folder_id,

        ---------- flags
        coalesce("isDraft", false) as is_draft,
        coalesce(_removed, false) as is_removed,

        ---------- timestamps (UTC)
        {{ parse_graph_datetime('"sentDateTime"') }} as sent_at,
        {{ parse_graph_datetime('"receivedDateTime"') }} as received_at,
        {{ parse_graph_datetime('"lastModifiedDateTime"') }} as last_modified_at,

        ---------- people
        nullif(lower(trim({{ struct_field('"from"', 'emailAddress.address') }})), '')
            as from_address,
        {{ struct_field('"from"', 'emailAddress.name') }} as from_name,
        nullif(lower(trim({{ struct_field('sender', 'emailAddress.address') }})), '')
            as sender_address,
        {{ address_list(['"toRecipients"', '"ccRecipients"', '"bccRecipients"']) }}
            as recipient_addresses,

        ---------- load metadata
        _loaded_at as loaded_at

    from source

)

select * from renamed
