with

source as (

    -- removed copies stay, flagged: the incremental email models must see them go
    select * from {{ source('graph', 'messages') }}

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
        -- the To, Cc and Bcc entries as Graph sent them ({emailAddress: {name, address}});
        -- int_email_roles unnests them and compares their addresses trimmed, lower case
        {{ concat_lists(['"toRecipients"', '"ccRecipients"', '"bccRecipients"']) }}
            as recipients,

        ---------- load metadata
        _loaded_at as loaded_at

    from source

)

select * from renamed
