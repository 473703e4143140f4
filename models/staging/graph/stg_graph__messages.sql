with

source as (

    -- removed copies stay, flagged: the incremental email models rebuild the days they left
    select * from {{ source('graph', 'messages') }}

),

renamed as (

    select

        ---------- ids
        _mailbox_id as mailbox_id,
        id as message_id,
        -- as Graph sent it (RFC 5322 `<...>`, no spaces): a trim would cost time on every scan
        nullif("internetMessageId", '') as internet_message_id,
        "conversationId" as conversation_id,
        coalesce("parentFolderId", _folder_id) as folder_id,

        ---------- flags
        coalesce("isDraft", false) as is_draft,
        coalesce(_removed, false) as is_removed,

        ---------- timestamps (UTC)
        {{ parse_graph_datetime('"sentDateTime"') }} as sent_at,
        cast({{ parse_graph_datetime('"sentDateTime"') }} as date) as sent_date,
        {{ parse_graph_datetime('"receivedDateTime"') }} as received_at,
        {{ parse_graph_datetime('"lastModifiedDateTime"') }} as last_modified_at,

        ---------- people
        nullif(lower(trim({{ struct_field('"from"', 'emailAddress.address') }})), '')
            as from_address,
        {{ struct_field('"from"', 'emailAddress.name') }} as from_name,
        nullif(lower(trim({{ struct_field('sender', 'emailAddress.address') }})), '')
            as sender_address,
        -- the address of each To, Cc and Bcc entry ({emailAddress: {name, address}}), as
        -- written, each list apart: int_email_recipients unnests them one by one
        -- (concatenating them first copies every entry); a list of strings is half the size
        -- of the entries, which makes int_email_copies cheaper to build
        {{ list_of_field('"toRecipients"', 'emailAddress.address') }} as to_addresses,
        {{ list_of_field('"ccRecipients"', 'emailAddress.address') }} as cc_addresses,
        {{ list_of_field('"bccRecipients"', 'emailAddress.address') }} as bcc_addresses,

        ---------- load metadata
        _loaded_at as loaded_at

    from source

)

select * from renamed
